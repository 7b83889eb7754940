import type { ArtifactFile } from '../types.js';

/** For the artifact store tests: one file of a tree. */
export const file = (path: string, content: string, mode = 0o644): ArtifactFile => ({
  path,
  mode,
  content: Buffer.from(content),
});

/** A small tree with a subdirectory and an executable. */
export const tree = [
  file('index.mjs', 'export default 1;\n'),
  file('lib/util.mjs', 'x'),
  file('bin/run', '#!/bin/sh\n', 0o755),
];
