// Builds the host (dist/nimbus.mjs and its log writer thread dist/log-worker.mjs, node_modules left
// external) and the guest runtime (dist/guest/*.mjs, self-contained: it runs inside instances and
// must start fast).
import { copyFileSync } from 'node:fs';
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  logLevel: 'warning',
};

await Promise.all([
  build({ ...common, entryPoints: ['src/cmd/main.ts'], outfile: 'dist/nimbus.mjs', packages: 'external' }),
  // The log writer thread, which the host starts from beside itself (observe/log-writer-thread.ts).
  build({
    ...common,
    entryPoints: ['src/observe/log-worker.ts'],
    outfile: 'dist/log-worker.mjs',
    packages: 'external',
  }),
  build({
    ...common,
    entryPoints: {
      function: 'src/runtime/guest/function.ts',
      watchdog: 'src/runtime/guest/watchdog.ts',
      // The warm pool's cell (runtime/process/cell-pool.ts) and the empty module it imports to warm up.
      cell: 'src/runtime/guest/cell.ts',
      'cell-warm': 'src/runtime/guest/cell-warm.ts',
    },
    outdir: 'dist/guest',
    // .mjs: the guest runs from a folder with no package.json (inside the sandbox), so the
    // extension alone must say ESM.
    outExtension: { '.js': '.mjs' },
  }),
  // The web dashboard (web/ → dist/web): one minified script and one stylesheet, served at /.
  build({
    entryPoints: ['web/app.js'],
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'esm',
    minify: true,
    outdir: 'dist/web',
    logLevel: 'warning',
  }).then(() => copyFileSync('web/index.html', 'dist/web/index.html')),
  // The snapshot guest: CommonJS, because `node --build-snapshot` takes one CommonJS entry; the
  // snapshot builder bundles it again with each function (docs/snapshots.md). No sourcemap: it
  // would be bundled into every blob.
  build({
    ...common,
    entryPoints: ['src/runtime/guest/snapshot-entry.ts'],
    outfile: 'dist/guest/snapshot.cjs',
    format: 'cjs',
    sourcemap: false,
  }),
  // The web surface installed in every V8 isolate (runtime: isolate): one script, no imports.
  build({
    ...common,
    platform: 'neutral',
    format: 'iife',
    target: 'es2022',
    sourcemap: false,
    entryPoints: { prelude: 'src/runtime/isolate/prelude/index.ts' },
    outdir: 'dist/isolate',
  }),
]);
