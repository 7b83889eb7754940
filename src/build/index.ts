/** The build folder's public surface: upload → source files → config → artifact, and identity. */
export { type SourceFile, type UnpackLimits, unpackArchive } from './archive.js';
export { type BuildResult, buildArtifact, NODE_ENTRY } from './bundle.js';
export { CONFIG_DEFAULTS, HANDLER_CANDIDATES, resolveConfig } from './config.js';
export { canonicalJson, configIdentity } from './identity.js';
export { MANIFEST_FILES } from './manifest.js';
export { parseTriggersField, resolveTriggers } from './triggers-field.js';
