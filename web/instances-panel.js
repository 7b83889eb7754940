import { ago, bytes, enc, get } from './api.js';
import { Chart } from './chart.js';
import { usePoll } from './hooks.js';
import { html, useMemo, useRef } from './html.js';

const KEEP = 120;

/**
 * Live instances, polled every second, with CPU and memory of each over the last two minutes
 * (kept here in the page: the API gives the latest sample of each instance).
 */
export function InstancesPanel({ name }) {
  const history = useRef({ times: [], byId: new Map() });
  const [window_, error] = usePoll(
    async () => {
      const w = await get(`/functions/${enc(name)}/instances`);
      const h = history.current;
      h.times.push(Date.now() / 1000);
      for (const i of w?.instances ?? []) {
        let s = h.byId.get(i.id);
        if (!s) {
          s = { cpu: new Array(h.times.length - 1).fill(null), mem: new Array(h.times.length - 1).fill(null) };
          h.byId.set(i.id, s);
        }
      }
      const live = new Set((w?.instances ?? []).map((i) => i.id));
      for (const [id, s] of h.byId) {
        const i = w?.instances.find((x) => x.id === id);
        s.cpu.push(live.has(id) ? (i.usage?.cpuPercent ?? null) : null);
        s.mem.push(live.has(id) && i.usage ? i.usage.memoryBytes / 1024 / 1024 : null);
      }
      if (h.times.length > KEEP) {
        h.times.shift();
        for (const s of h.byId.values()) {
          s.cpu.shift();
          s.mem.shift();
        }
      }
      for (const [id, s] of h.byId) if (s.cpu.every((v) => v === null)) h.byId.delete(id);
      return { ...w, tick: h.times.length };
    },
    1000,
    [name],
  );
  const h = history.current;
  const ids = [...h.byId.keys()].slice(-8);
  const tick = window_?.tick;
  const cpu = useMemo(() => [[...h.times], ...ids.map((id) => [...h.byId.get(id).cpu])], [tick]);
  const mem = useMemo(() => [[...h.times], ...ids.map((id) => [...h.byId.get(id).mem])], [tick]);
  const series = ids.map((id) => ({ label: id }));
  const instances = window_?.instances ?? [];
  return html`
    <section>
      <h2>Instances <span class="muted small">(live, every second)</span></h2>
      ${window_?.startError && html`<p class="banner bad">Start failing: ${window_.startError.message ?? JSON.stringify(window_.startError)}</p>`}
      <table class="grid" data-testid="instances">
        <thead><tr><th>Instance</th><th>Revision</th><th>State</th><th>In flight</th><th>Requests</th><th>CPU</th><th>Memory</th><th>Started</th></tr></thead>
        <tbody>
          ${instances.length === 0 && html`<tr><td colspan="8" class="muted">No live instances (scaled to zero).</td></tr>`}
          ${instances.map(
            (i) => html`<tr data-instance=${i.id}>
              <td><code>${i.id}</code></td><td>${i.revision}</td><td><span class=${`badge ${i.state === 'ready' ? 'ok' : i.state === 'busy' ? 'busy' : 'warn'}`}>${i.state}</span></td>
              <td>${i.inFlight}</td><td data-testid="requests">${i.requests}</td>
              <td data-testid="cpu">${i.usage ? `${i.usage.cpuPercent}%` : '–'}</td><td data-testid="memory">${bytes(i.usage?.memoryBytes)}</td><td>${ago(i.startedAt)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${error && html`<p class="bad-text">${error}</p>`}
      <div class="charts">
        <${Chart} title="CPU (% of a core)" series=${series} data=${cpu} unit="%" />
        <${Chart} title="Memory (MB)" series=${series} data=${mem} />
      </div>
      ${
        window_?.recent?.length > 0 &&
        html`<details><summary>Recently ended instances (${window_.recent.length})</summary>
          <table class="grid"><tbody>${window_.recent.map((r) => html`<tr><td><code>${r.id}</code></td><td>${r.revision}</td><td>${r.state}</td><td>${r.requests} requests</td><td>${r.reason}</td><td>${ago(r.endedAt)}</td></tr>`)}</tbody></table>
        </details>`
      }
    </section>
  `;
}
