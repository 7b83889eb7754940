// Builds the host (dist/nimbus.mjs, node_modules left external) and the guest runtime
// (dist/guest/*.mjs, self-contained: it runs inside instances and must start fast).
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
  build({
    ...common,
    entryPoints: { function: 'src/runtime/guest/function.ts', watchdog: 'src/runtime/guest/watchdog.ts' },
    outdir: 'dist/guest',
    // .mjs: the guest runs from a folder with no package.json (inside the sandbox), so the
    // extension alone must say ESM.
    outExtension: { '.js': '.mjs' },
  }),
]);
