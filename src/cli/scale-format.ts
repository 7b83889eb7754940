import type { ScaleConfig } from '../core/types.js';
import type { ScaleRevisionView } from './api-types.js';
import { formatTable } from './table.js';

/**
 * The `scale`, `autoscaler` and `warming` lines of `nimbus get` from a revision's stored settings
 * (defaults are filled in at deploy; revisions stored before the autoscaler show the defaults the
 * autoscaler applies to them).
 */
export function formatScaleConfig(s: ScaleConfig): [string, string][] {
  const lines: [string, string][] = [
    ['scale', `min ${s.min}, max ${s.max}, initial ${s.initial ?? s.min}, idle timeout ${s.idleTimeout} s`],
  ];
  const metric = s.metric ?? 'concurrency';
  const target = s.target === undefined ? 'default target' : `target ${s.target}${metric === 'rps' ? '/s' : ''}`;
  const share = s.targetUtilization === undefined ? '' : ` at ${Math.round(s.targetUtilization * 100)}%`;
  const parts = [
    `${metric}, ${target}${share}`,
    `window ${s.window ?? 60} s`,
    `scale-down delay ${s.scaleDownDelay ?? 0} s`,
    `queue ${s.maxQueue === undefined ? "node's default" : `≤ ${s.maxQueue}`}`,
  ];
  lines.push(['autoscaler', parts.join(', ')]);
  const windows = (s.schedule ?? []).map(
    (w) => `min ${w.min} from "${w.cron}" (${w.timezone ?? 'UTC'}) for ${formatSeconds(w.duration)}`,
  );
  if (windows.length > 0) lines.push(['warming', windows.join('; ')]);
  return lines;
}

/** The live autoscaler of each revision with instances or a pool: desired vs ready, panic, load, queue. */
export function formatScaleViews(views: ScaleRevisionView[]): string {
  if (views.length === 0) return 'autoscaler: idle (no live revision)';
  const rows = views.map((v) => {
    const load = v.metric === 'rps' ? v.observed.rps : v.observed.concurrency;
    const num = (n: number | null) => (n === null ? '-' : String(Math.round(n * 10) / 10));
    const min = v.scheduled ? `${v.min} (warming until ${v.scheduled.until.slice(11, 16)} UTC)` : String(v.min);
    return [
      v.revision,
      String(v.desired),
      String(v.ready),
      String(v.starting),
      String(v.draining),
      v.panic ? 'yes' : 'no',
      `${num(load.stable)} / ${num(load.panic)}`,
      `${v.queue.length}/${v.queue.limit}`,
      min,
      v.reason ?? '',
    ];
  });
  return `autoscaler:\n${formatTable(
    ['REVISION', 'DESIRED', 'READY', 'STARTING', 'DRAINING', 'PANIC', 'STABLE/PANIC', 'QUEUE', 'MIN', 'REASON'],
    rows,
  )}`;
}

/** 36000 → "10h", 5400 → "1h30m", 90 → "1m30s". */
function formatSeconds(total: number): string {
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || total === 0 ? `${s}s` : ''}`;
}
