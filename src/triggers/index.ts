/** The triggers folder's public surface: the Trigger contract, its manager, and the sources. */
export { cronTrigger } from './cron.js';
export { intervalTrigger } from './interval.js';
export { cloudEventHeaders, createTriggerManager, type TriggerManager, type TriggerView } from './manager.js';
export { manifestTriggerId } from './manifest-plan.js';
export { mqttTrigger } from './mqtt.js';
export { natsTrigger } from './nats.js';
export { rabbitmqTrigger } from './rabbitmq.js';
export { redisStreamsTrigger } from './redis-streams.js';
export type {
  DeclaredTrigger,
  FireResult,
  ManifestTriggers,
  Trigger,
  TriggerChanges,
  TriggerContext,
  TriggerEvent,
  TriggerFactory,
  TriggerPlan,
  TriggerSpec,
  TriggerStatus,
} from './types.js';
