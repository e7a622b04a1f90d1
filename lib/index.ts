export { DiffusionError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { buildInfo } from './native/load.js';
export type { BuildInfo } from './native/load.js';
