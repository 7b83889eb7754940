/**
 * The snapshot hooks a function module may export (docs/snapshots.md): named exports, or members of
 * the default export (a CommonJS module's `module.exports`, or `export default { fetch, afterRestore }`).
 */
export type HookName = 'beforeSnapshot' | 'afterRestore';

/** The hook as a function bound to where it was found, or undefined. */
export function hookOf(mod: Record<string, unknown>, name: HookName): (() => unknown) | undefined {
  const named = mod[name];
  if (typeof named === 'function') return named.bind(mod) as () => unknown;
  const def = mod.default as Record<string, unknown> | undefined;
  const member = def && typeof def === 'object' ? def[name] : undefined;
  return typeof member === 'function' ? (member.bind(def) as () => unknown) : undefined;
}
