// Nimbus dashboard: preact + htm, uPlot charts, bundled by esbuild (scripts/build.mjs) into dist/web
// and served by `nimbus serve` at /. It reads only the public API (/api/v1).
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { FunctionPage } from './function-page.js';
import { FunctionsPage } from './functions-page.js';
import { useRoute } from './hooks.js';
import { html, render } from './html.js';

function App() {
  const route = useRoute();
  const fn = /^\/fn\/([^/]+)$/.exec(route);
  return html`
    <header><a href="#/" class="brand">☁ Nimbus</a><a href="/metrics">metrics</a><a href="/api/v1/openapi.json">API</a></header>
    <main>${fn ? html`<${FunctionPage} name=${decodeURIComponent(fn[1])} />` : html`<${FunctionsPage} />`}</main>
  `;
}

render(html`<${App} />`, document.getElementById('app'));
