export type { InstanceManager, InstanceManagerOptions } from './manager.js';
export { createInstanceManager } from './manager.js';
export { instancesToReap, instancesToStart, restartBackoffMs } from './scaling.js';
export type { EndedInstanceInfo, InstanceInfo, InstanceLogRecord, Lease, RevisionPlan, SlotState } from './types.js';
