import type { Runtime } from '../runtime/types.js';

/** The part of an instance slot the freezer manages. */
export interface Freezable {
  id: string;
  /** Suspended by the runtime's freezer while idle; thawed before its next request. */
  frozen?: boolean;
  /** A freeze or thaw in progress. */
  transition?: Promise<unknown>;
}

/**
 * Freezes an idle instance, like Lambda between invocations: it gets no CPU until its next
 * request. A request arriving meanwhile waits on `transition`, then thaws it (see `thawed`).
 */
export function freeze(runtime: Runtime, slot: Freezable): void {
  if (!runtime.freeze) return;
  slot.transition = runtime
    .freeze(slot.id)
    .then((ok) => {
      slot.frozen = ok;
    })
    .catch(() => {})
    .finally(() => {
      slot.transition = undefined;
    });
}

/** Resolves once the slot's instance runs: waits out a freeze in progress, then thaws it. */
export async function thawed(runtime: Runtime, slot: Freezable): Promise<void> {
  while (slot.transition) await slot.transition;
  if (!slot.frozen || !runtime.thaw) return;
  const thaw = runtime.thaw(slot.id).catch(() => false);
  slot.transition = thaw;
  await thaw;
  slot.frozen = false;
  slot.transition = undefined;
}

/** What `freezeIdle` looks at of a slot. */
export interface FreezeCandidate extends Freezable {
  state: string;
  inFlight: number;
  lastUsedAt: number;
}

/** Freezes every ready slot with nothing in flight and unused for `afterMs` (0: never). */
export function freezeIdle(runtime: Runtime, slots: Iterable<FreezeCandidate>, now: number, afterMs: number): void {
  if (!runtime.freeze || afterMs <= 0) return;
  for (const slot of slots) {
    if (
      slot.state === 'ready' &&
      slot.inFlight === 0 &&
      !slot.frozen &&
      !slot.transition &&
      now - slot.lastUsedAt >= afterMs
    )
      freeze(runtime, slot);
  }
}
