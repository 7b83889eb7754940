/** The isolate provider (`runtime: isolate`): fetch-style functions in V8 isolates. docs/isolate.md. */
export { createIsolateRuntime, type IsolateRuntime, type IsolateRuntimeOptions } from './isolate-runtime.js';
