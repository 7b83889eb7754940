import { ago, enc, get, ms, requests, summarize } from './api.js';
import { Chart } from './chart.js';
import { health } from './functions-page.js';
import { usePoll } from './hooks.js';
import { html, useEffect, useMemo, useState } from './html.js';
import { InstancesPanel } from './instances-panel.js';

const WINDOW_MS = 15 * 60_000;

export function FunctionPage({ name }) {
  const [detail, error] = usePoll(
    async () => {
      const [d, traffic] = await Promise.all([get(`/functions/${enc(name)}`), get(`/functions/${enc(name)}/traffic`)]);
      return d ? { ...d, traffic } : null;
    },
    3000,
    [name],
  );
  if (!detail)
    return html`<p class="muted">${error ?? (detail === undefined ? 'Loading…' : `No function named ${name}.`)}</p>`;
  const f = detail.function;
  const h = health(f, detail.startError);
  const latest = detail.revisions.at(-1);
  return html`
    <p><a href="#/">← Functions</a></p>
    <h1>${f.name} <span class=${`badge ${h.cls}`}>${h.label}</span></h1>
    <p class="muted" data-testid="deploy-status">
      ${f.runtime} · ${f.latestRevision} deployed ${ago(latest?.createdAt ?? f.updatedAt)} · ${detail.config.memory ?? detail.config.memoryMb ?? ''}${detail.config.memory || detail.config.memoryMb ? ' MB · ' : ''}
      <a href=${f.url}>${f.url}</a>
    </p>
    ${detail.startError && html`<p class="banner bad">The latest revision does not start: ${detail.startError.message ?? JSON.stringify(detail.startError)}</p>`}
    <${InstancesPanel} name=${name} />
    <${Traffic} name=${name} />
    <${Revisions} revisions=${detail.revisions} traffic=${detail.traffic} />
    <${AsyncPanel} name=${name} />
    <${LogTail} name=${name} />
  `;
}

function Revisions({ revisions, traffic }) {
  // `GET …/traffic` (revision shares, tags, a running rollout) is shown when the node has it.
  const shares = new Map((traffic?.effective ?? []).map((t) => [t.revision, t]));
  const rollout = traffic?.rollout;
  return html`<section>
    <h2>Revisions</h2>
    ${rollout && html`<p class="banner warn">Rollout: ${rollout.canary} at ${rollout.percent}% (${rollout.status})</p>`}
    <table class="grid" data-testid="revisions">
      <thead><tr><th>Revision</th><th>Traffic</th><th>Tags</th><th>Digest</th><th>Created</th></tr></thead>
      <tbody>
        ${[...revisions].reverse().map((r) => {
          const share = shares.get(r.id);
          const percent = share ? share.percent : traffic ? 0 : r === revisions.at(-1) ? 100 : 0;
          return html`<tr>
            <td>${r.id}${r.id === traffic?.latestRevision ? html` <span class="muted small">latest</span>` : ''}</td>
            <td><span class="bar"><span style=${`width:${percent}%`}></span></span> ${percent}%</td>
            <td>${(share?.tags ?? []).join(', ')}</td>
            <td><code>${(r.digest ?? '').slice(0, 12)}</code></td>
            <td>${ago(r.createdAt)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </section>`;
}

function Traffic({ name }) {
  const [records] = usePoll(() => requests(name, WINDOW_MS), 2000, [name]);
  const list = records ?? [];
  const s = summarize(list);
  const latency = useMemo(() => {
    const t = list.map((r) => r.t / 1000);
    return [t, list.map((r) => (r.cold ? null : r.durationMs)), list.map((r) => (r.cold ? r.durationMs : null))];
  }, [records]);
  const perMinute = useMemo(() => {
    const buckets = new Map();
    const now = Math.floor(Date.now() / 60_000);
    for (let m = now - 14; m <= now; m++) buckets.set(m, [0, 0]);
    for (const r of list) {
      const b = buckets.get(Math.floor(r.t / 60_000));
      if (b) b[r.cold ? 1 : 0]++;
    }
    const keys = [...buckets.keys()];
    return [keys.map((k) => k * 60), keys.map((k) => buckets.get(k)[0]), keys.map((k) => buckets.get(k)[1])];
  }, [records]);
  return html`<section>
    <h2>Traffic <span class="muted small">(last 15 minutes)</span></h2>
    <p class="stats" data-testid="traffic">
      <span><b>${s.count}</b> requests</span><span><b class=${s.errors ? 'bad-text' : ''}>${s.errors}</b> 5xx</span>
      <span><b>${s.cold}</b> cold starts</span><span>p50 <b>${ms(s.p50)}</b></span><span>p95 <b>${ms(s.p95)}</b></span>
    </p>
    <div class="charts">
      <${Chart} title="Latency (ms) per request" series=${[{ label: 'warm', points: true, color: '#2563eb' }, { label: 'cold start', points: true, color: '#dc2626' }]} data=${latency} />
      <${Chart} title="Requests per minute" series=${[{ label: 'warm', bars: true, color: '#2563eb' }, { label: 'cold start', bars: true, color: '#dc2626' }]} data=${perMinute} />
    </div>
    <h3>Recent invocations</h3>
    <table class="grid" data-testid="invocations">
      <thead><tr><th>Time</th><th>Status</th><th>Duration</th><th></th><th>Revision</th><th>Instance</th><th>Request id</th></tr></thead>
      <tbody>
        ${list.length === 0 && html`<tr><td colspan="7" class="muted">No requests in the last 15 minutes.</td></tr>`}
        ${list
          .slice(-15)
          .reverse()
          .map(
            (r) => html`<tr>
              <td>${new Date(r.t).toLocaleTimeString()}</td>
              <td class=${r.status >= 500 ? 'bad-text' : r.status >= 400 ? 'warn-text' : ''}>${r.status}${r.error ? ` ${r.error}` : ''}</td>
              <td>${ms(r.durationMs)}</td><td>${r.cold ? html`<span class="badge warn">cold</span>` : ''}</td>
              <td>${r.revision}</td><td><code>${r.instance}</code></td><td><code class="small">${r.requestId}</code></td>
            </tr>`,
          )}
      </tbody>
    </table>
  </section>`;
}

function AsyncPanel({ name }) {
  const [data] = usePoll(
    async () => {
      const [inv, dlq] = await Promise.all([
        get(`/functions/${enc(name)}/invocations?limit=10`),
        get(`/functions/${enc(name)}/dlq?limit=10`),
      ]);
      return { inv, dlq };
    },
    5000,
    [name],
  );
  const counts = data?.inv?.counts;
  if (!counts || Object.values(counts).every((n) => n === 0)) return null;
  return html`<section>
    <h2>Async queue</h2>
    <p class="stats" data-testid="async">
      ${Object.entries(counts).map(([state, n]) => html`<span><b class=${state === 'dead' && n ? 'bad-text' : ''}>${n}</b> ${state}</span>`)}
    </p>
    ${
      data.dlq?.invocations?.length > 0 &&
      html`<h3>Dead letters</h3>
      <table class="grid"><thead><tr><th>Id</th><th>Attempts</th><th>Last error</th><th>Updated</th></tr></thead><tbody>
        ${data.dlq.invocations.map((i) => html`<tr><td><code>${i.id}</code></td><td>${i.attempts}</td><td>${i.lastError ?? ''}</td><td>${ago(i.updatedAt)}</td></tr>`)}
      </tbody></table>`
    }
  </section>`;
}

function LogTail({ name }) {
  const [lines, setLines] = useState([]);
  const [live, setLive] = useState(false);
  useEffect(() => {
    setLines([]);
    const source = new EventSource(`/api/v1/functions/${enc(name)}/logs?follow=true&limit=50`);
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    source.onmessage = (e) => setLines((l) => [...l.slice(-199), JSON.parse(e.data)]);
    return () => source.close();
  }, [name]);
  return html`<section>
    <h2>Logs <span class=${`badge ${live ? 'ok' : 'idle'}`}>${live ? 'live' : 'connecting'}</span></h2>
    <pre class="logs" data-testid="logs">${lines.map(
      (r) =>
        html`<div class=${`log ${r.stream}`}><span class="muted">${r.time.slice(11, 23)} ${r.instance}</span> ${r.stream === 'request' ? `REPORT ${r.line}` : r.line}</div>`,
    )}</pre>
  </section>`;
}
