import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../core/errors.js';
import { packageRoot } from '../core/package-root.js';

interface DocEntry {
  status?: number;
  fault?: string;
  fix?: string;
}

/** `## CODE` sections with `- **Status:** N`, `- **Fault:** user|platform`, `- **Fix:** …` lines. */
function parseDoc(markdown: string): Map<string, DocEntry> {
  const entries = new Map<string, DocEntry>();
  let current: DocEntry | undefined;
  for (const line of markdown.split('\n')) {
    const heading = /^## (\S+)\s*$/.exec(line);
    if (heading) {
      current = {};
      entries.set(heading[1], current);
      continue;
    }
    const field = /^- \*\*(Status|Fault|Fix):\*\* (.*)$/.exec(line);
    if (!field || !current) continue;
    if (field[1] === 'Status') current.status = Number(field[2]);
    if (field[1] === 'Fault') current.fault = field[2].trim();
    if (field[1] === 'Fix') current.fix = field[2].trim();
  }
  return entries;
}

describe('docs/errors.md', () => {
  const doc = parseDoc(readFileSync(join(packageRoot(), 'docs', 'errors.md'), 'utf8'));

  it('documents every catalogue code with its status, fault and fix line', () => {
    for (const [code, entry] of Object.entries(ErrorCodes)) {
      const documented = doc.get(code);
      assert.ok(documented, `${code} has no section in docs/errors.md`);
      assert.equal(documented.status, entry.status, `${code}: status`);
      assert.equal(documented.fault, entry.userFault ? 'user' : 'platform', `${code}: fault`);
      assert.equal(documented.fix, entry.fix, `${code}: the fix line must mirror src/core/errors.ts`);
    }
  });

  it('documents no code that the catalogue lacks', () => {
    const extra = [...doc.keys()].filter((code) => !(code in ErrorCodes));
    assert.deepEqual(extra, []);
  });

  it('lists every code in the summary table with its status', () => {
    const markdown = readFileSync(join(packageRoot(), 'docs', 'errors.md'), 'utf8');
    for (const [code, entry] of Object.entries(ErrorCodes)) {
      assert.match(
        markdown,
        new RegExp(`\\| \\[\`${code}\`\\]\\(#${code.toLowerCase()}\\) \\| ${entry.status} \\|`),
        code,
      );
    }
  });
});
