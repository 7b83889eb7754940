const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/**
 * Seconds in a duration string: plain digits ("300", seconds) or one or more number+unit groups
 * with units h, m, s ("30s", "5m", "1h30m"). Returns undefined when `text` is not such a string.
 */
export function parseDurationSeconds(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  if (!/^(\d+[hms])+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([hms])/g)) total += Number(amount) * UNIT_SECONDS[unit!]!;
  return total;
}
