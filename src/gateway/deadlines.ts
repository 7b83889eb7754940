import type { Clock } from '../core/clock.js';

/** One request's deadline, as `Deadlines.add` returned it. */
export interface Deadline {
  readonly at: number;
}

/**
 * Request deadlines without a timer per request. Requests with the same timeout expire in the
 * order they arrived, so each timeout value keeps its deadlines in a linked list (O(1) to add and
 * to remove) and one timer, armed for the earliest: a finished request only unlinks itself, and
 * the timer, when it fires, expires what is due and re-arms for the next. (A setTimeout plus its
 * closure and clearTimeout per request cost more, measured in BENCHMARKS.md.)
 */
export interface Deadlines {
  /** Calls `onExpire` once `ms` have passed, unless cancelled first. */
  add(ms: number, onExpire: () => void): Deadline;
  /** Forgets a deadline (no-op once expired or cancelled). */
  cancel(deadline: Deadline): void;
}

interface Entry extends Deadline {
  onExpire: () => void;
  prev: Entry | undefined;
  next: Entry | undefined;
  list: List | undefined;
}

interface List {
  ms: number;
  head: Entry | undefined;
  tail: Entry | undefined;
  /** Whether its timer is armed (for at most the head's deadline). */
  armed: boolean;
}

export function createDeadlines(clock: Clock): Deadlines {
  const lists = new Map<number, List>();

  const unlink = (entry: Entry, list: List) => {
    if (entry.prev) entry.prev.next = entry.next;
    else list.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else list.tail = entry.prev;
    entry.prev = entry.next = entry.list = undefined;
  };

  const arm = (list: List, ms: number) => {
    list.armed = true;
    clock.setTimer(() => fire(list), Math.max(1, ms));
  };

  // The timer stays armed when its list empties: a lone request at a time then costs no timer at
  // all, and an idle list costs one wake-up per timeout.
  const fire = (list: List) => {
    list.armed = false;
    const now = clock.now();
    for (let entry = list.head; entry && entry.at <= now; entry = list.head) {
      unlink(entry, list);
      entry.onExpire();
    }
    if (list.head) arm(list, list.head.at - now);
  };

  return {
    add(ms, onExpire) {
      let list = lists.get(ms);
      if (!list) {
        list = { ms, head: undefined, tail: undefined, armed: false };
        lists.set(ms, list);
      }
      const entry: Entry = { at: clock.now() + ms, onExpire, prev: list.tail, next: undefined, list };
      if (list.tail) list.tail.next = entry;
      else list.head = entry;
      list.tail = entry;
      // An armed timer fires at or before this deadline (every earlier entry had a shorter one).
      if (!list.armed) arm(list, ms);
      return entry;
    },
    cancel(deadline) {
      const entry = deadline as Entry;
      if (entry.list) unlink(entry, entry.list);
    },
  };
}
