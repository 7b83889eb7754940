export { type CheckpointStatus, type CriuRuntime, createCriuRuntime, unsupportedReason } from './criu-runtime.js';
export { type CriuSupport, criuSupport, detectCriu } from './detect.js';
export { checkpointKey, checkpointSubject } from './key.js';
