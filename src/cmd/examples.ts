import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FunctionsService } from '../api/index.js';
import { packDirectory } from '../cli/pack.js';
import { packageRoot } from '../core/package-root.js';

/** Deploys every folder of examples/ (first start of an empty node); returns the functions made. */
export async function deployExamples(service: FunctionsService): Promise<string[]> {
  const dir = join(packageRoot(), 'examples');
  const names: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    try {
      const { revision } = await service.deploy({
        archive: (await packDirectory(join(dir, entry.name))).archive,
        overrides: {},
        nameHint: entry.name,
      });
      names.push(revision.function);
    } catch (err) {
      console.error(`nimbus: example ${entry.name} did not deploy: ${(err as Error).message}`);
    }
  }
  return names;
}
