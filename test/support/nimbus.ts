import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packDirectory } from '../../src/cli/pack.js';
import { type NimbusNode, type NimbusOptions, startNimbus } from '../../src/cmd/serve.js';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
export const APPS = join(FIXTURES, 'apps');

export interface TestNode extends NimbusNode {
  dataDir: string;
  /** Deploys a directory through the real API; returns status and JSON body. */
  deploy(dir: string, overrides?: Record<string, unknown>): Promise<{ status: number; body: any }>;
  /** fetch against the node: `call('/fn/echo/x')`. */
  call(path: string, init?: RequestInit): Promise<Response>;
  /** `call`, then the body parsed as JSON. */
  json(path: string, init?: RequestInit): Promise<any>;
  /** Closes the node and removes its data dir. */
  dispose(): Promise<void>;
}

/** Starts a real node on 127.0.0.1, port 0, with a fresh temp data dir (or the one given). */
export async function startTestNode(options: Partial<NimbusOptions> = {}): Promise<TestNode> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'nimbus-test-'));
  const node = await startNimbus({ port: 0, ...options, dataDir });
  const call = (path: string, init?: RequestInit) => fetch(`${node.url}${path}`, init);
  return {
    ...node,
    dataDir,
    call,
    json: async (path, init) => readJson(await call(path, init)),
    async deploy(dir, overrides = {}) {
      const { archive } = await packDirectory(dir);
      const q = new URLSearchParams({ config: JSON.stringify(overrides) });
      const res = await call(`/api/v1/functions?${q}`, {
        method: 'POST',
        body: archive,
        headers: { 'content-type': 'application/gzip' },
      });
      return { status: res.status, body: await res.json() };
    },
    async dispose() {
      await node.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A response body as JSON, typed loosely for assertions. */
export async function readJson(res: Response): Promise<any> {
  return res.json();
}

/** Writes a throw-away source directory from `{ path: content }`. */
export function writeSource(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-src-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (for state the server changes on its own clock). */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
