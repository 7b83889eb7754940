import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LazyAbort, toAbortSignal } from './abort.js';

describe('LazyAbort', () => {
  it('calls each listener once, in order, and not the removed ones', () => {
    const abort = new LazyAbort();
    const calls: string[] = [];
    const b = () => calls.push('b');
    abort.addEventListener('abort', () => calls.push('a'));
    abort.addEventListener('abort', b);
    abort.addEventListener('abort', () => calls.push('c'));
    abort.removeEventListener('abort', b);
    abort.abort(new Error('why'));
    abort.abort(new Error('again'));
    assert.deepEqual(calls, ['a', 'c']);
    assert.equal(abort.aborted, true);
    assert.equal((abort.reason as Error).message, 'why');
  });

  it('makes a real AbortSignal on demand, before or after the abort', () => {
    const early = new LazyAbort();
    const signal = early.signal;
    assert.equal(signal.aborted, false);
    let seen: unknown;
    signal.addEventListener('abort', () => {
      seen = signal.reason;
    });
    early.abort('timeout');
    assert.equal(seen, 'timeout');
    const late = new LazyAbort();
    late.abort('closed');
    assert.equal(late.signal.aborted, true);
    assert.equal(late.signal.reason, 'closed');
    assert.equal(toAbortSignal(late), late.signal);
  });

  it('toAbortSignal passes an AbortSignal through and follows any other AbortLike', () => {
    const controller = new AbortController();
    assert.equal(toAbortSignal(controller.signal), controller.signal);
    assert.equal(toAbortSignal(undefined), undefined);
    let listener: (() => void) | undefined;
    const like = {
      aborted: false,
      reason: 'gone' as unknown,
      addEventListener: (_t: 'abort', l: () => void) => {
        listener = l;
      },
      removeEventListener: () => {},
    };
    const signal = toAbortSignal(like);
    assert.equal(signal.aborted, false);
    like.aborted = true;
    listener!();
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, 'gone');
  });
});
