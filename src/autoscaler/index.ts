export { MetricCollector, type WindowValues } from './collector.js';
export { type DeciderState, type Decision, decide, initialDeciderState, type Observation } from './decider.js';
export {
  AUTOSCALE_DEFAULTS,
  type AutoscaleSettings,
  autoscaleSettings,
  SCALE_LIMITS,
  type ScaleMetric,
} from './settings.js';
