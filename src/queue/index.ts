/**
 * The queue folder's public surface: the durable work-queue contract and its embedded SQLite
 * implementation. The conformance suite is imported from './conformance.js' directly.
 */
export { createSqliteQueue, type SqliteQueueOptions } from './sqlite-queue.js';
export type { EnqueueInput, Job, JobState, LeasedJob, ListOptions, Outcome, Queue, QueueDepth } from './types.js';
export { FINAL_STATES } from './types.js';
