import { ago, enc, get, ms, requests, summarize } from './api.js';
import { usePoll } from './hooks.js';
import { html } from './html.js';

const WINDOW_MS = 5 * 60_000;

/** Health from what the API shows: crash-looping, warm, starting, or scaled to zero. */
export function health(fn, startError) {
  if (startError) return { label: 'failing', cls: 'bad' };
  if (fn.instances.ready > 0) return { label: 'warm', cls: 'ok' };
  if (fn.instances.starting > 0) return { label: 'starting', cls: 'warn' };
  return { label: 'scaled to zero', cls: 'idle' };
}

export function FunctionsPage() {
  const [list, error] = usePoll(async () => {
    const { functions } = await get('/functions');
    // Traffic of the last five minutes from each function's request records.
    const traffic = await Promise.all(functions.map((f) => requests(f.name, WINDOW_MS).then(summarize)));
    return functions.map((f, i) => ({ ...f, traffic: traffic[i] }));
  }, 2000);
  if (!list) return html`<p class="muted">${error ?? 'Loading…'}</p>`;
  if (list.length === 0)
    return html`<p class="muted">No functions yet: deploy one with <code>nimbus deploy DIR</code>.</p>`;
  return html`
    <h1>Functions</h1>
    <table class="grid" data-testid="functions">
      <thead>
        <tr>
          <th>Name</th><th>Health</th><th>Revision</th><th>Runtime</th><th>Instances</th>
          <th title="last 5 minutes">Requests</th><th>5xx</th><th>Cold</th><th>p50</th><th>p95</th><th>Updated</th>
        </tr>
      </thead>
      <tbody>
        ${list.map((f) => {
          const h = health(f);
          const t = f.traffic;
          return html`<tr data-function=${f.name}>
            <td><a href=${`#/fn/${enc(f.name)}`}>${f.name}</a></td>
            <td><span class=${`badge ${h.cls}`}>${h.label}</span></td>
            <td>${f.latestRevision}</td>
            <td>${f.runtime}</td>
            <td>${f.instances.ready} ready${f.instances.busy ? `, ${f.instances.busy} busy` : ''}${f.instances.starting ? `, ${f.instances.starting} starting` : ''}</td>
            <td>${t.count}</td>
            <td class=${t.errors ? 'bad-text' : ''}>${t.errors}</td>
            <td>${t.cold}</td>
            <td>${ms(t.p50)}</td>
            <td>${ms(t.p95)}</td>
            <td>${ago(f.updatedAt)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${error && html`<p class="bad-text">${error}</p>`}
  `;
}
