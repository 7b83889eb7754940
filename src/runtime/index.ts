/** The runtime (provider) surface: the contract, the process provider and the conformance suite. */

export { type ConformanceFixtures, runRuntimeConformance } from './conformance.js';
export { createProcessRuntime, type ProcessRuntime, type ProcessRuntimeOptions } from './process/process-runtime.js';
export type { InstanceStats } from './sandbox/cgroups.js';
export type { ExitInfo, Instance, InstanceSpec, InstanceState, Runtime, RuntimeEvent, StartMode } from './types.js';
export { DEADLINE_HEADER, REQUEST_ID_HEADER } from './types.js';
