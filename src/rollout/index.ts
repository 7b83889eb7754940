export { canarySpec, judge, promotedSpec, StepWindow } from './analysis.js';
export type { RolloutController, RolloutControllerOptions } from './controller.js';
export { createRolloutController } from './controller.js';
export type {
  InvocationSample,
  Release,
  ReleasePolicy,
  RolloutEvent,
  RolloutRecord,
  RolloutStatus,
  WindowStats,
} from './types.js';
export { ROLLOUT_DEFAULTS } from './types.js';
