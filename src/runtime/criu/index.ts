export { type CriuRuntime, createCriuRuntime } from './criu-runtime.js';
export { type CriuSupport, criuSupport, detectCriu } from './detect.js';
export { checkpointKey, checkpointSubject } from './key.js';
export { type CheckpointStatus, type CheckpointSubject, DETECTING, unsupportedReason } from './support.js';
