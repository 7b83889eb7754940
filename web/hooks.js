import { useEffect, useRef, useState } from './html.js';

/**
 * Calls `load` now and every `everyMs` while mounted; returns [value, error]. A slow answer never
 * overlaps the next call, and a failed one keeps the last good value on screen.
 */
export function usePoll(load, everyMs, deps = []) {
  const [state, setState] = useState({ value: undefined, error: undefined });
  const latest = useRef(load);
  latest.current = load;
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      try {
        const value = await latest.current();
        if (!stopped) setState({ value, error: undefined });
      } catch (err) {
        if (!stopped) setState((s) => ({ value: s.value, error: err.message }));
      }
      if (!stopped) timer = setTimeout(tick, everyMs);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
  return [state.value, state.error];
}

/** The current `location.hash` route, updated on navigation. */
export function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash.replace(/^#/, '') || '/';
}
