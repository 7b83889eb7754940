export type { InstanceManager, InstanceManagerOptions } from './manager.js';
export { createInstanceManager } from './manager.js';
export { instancesToDrain, restartBackoffMs, type ScaleView } from './scaling.js';
export type { EndedInstanceInfo, InstanceInfo, InstanceLogRecord, Lease, RevisionPlan, SlotState } from './types.js';
