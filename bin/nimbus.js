#!/usr/bin/env node
// The `nimbus` command. The code lives in dist/ (built by `npm install` through the prepare script).
import { existsSync } from 'node:fs';

const main = new URL('../dist/nimbus.mjs', import.meta.url);
if (!existsSync(main)) {
  console.error('nimbus: not built yet: run `npm install` (or `npm run build`) in the nimbus folder');
  process.exit(1);
}
await import(main.href);
