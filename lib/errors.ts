/** Stable error codes carried by every DiffusionError (`err.code`). */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_INVALID_FILE'
  | 'ERR_IO'
  | 'ERR_UNSUPPORTED'
  | 'ERR_SHAPE_MISMATCH'
  | 'ERR_ABORTED'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_NO_CUDA'
  | 'ERR_DISPOSED'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_INTERNAL';

export class DiffusionError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiffusionError';
    this.code = code;
  }
}

/** Formats a value for an "Expected … but received …" message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value))
    return `a ${value.constructor.name} of length ${(value as unknown as { length: number }).length}`;
  if (typeof value === 'function') return 'a function';
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

/** Throws `Expected <what> for <name> but received <value>` with ERR_INVALID_ARGUMENT. */
export function invalid(what: string, name: string, value: unknown): never {
  throw new DiffusionError('ERR_INVALID_ARGUMENT', `Expected ${what} for ${name} but received ${describe(value)}`);
}

const KNOWN_CODES = new Set<string>([
  'ERR_INVALID_ARGUMENT',
  'ERR_INVALID_FILE',
  'ERR_IO',
  'ERR_UNSUPPORTED',
  'ERR_SHAPE_MISMATCH',
  'ERR_ABORTED',
  'ERR_OUT_OF_MEMORY',
  'ERR_NO_CUDA',
  'ERR_DISPOSED',
  'ERR_NATIVE_LOAD',
  'ERR_INTERNAL',
]);

/** Re-types an error thrown by the addon (a plain Error with a `code`) as a DiffusionError. */
export function fromNative(err: unknown): DiffusionError {
  if (err instanceof DiffusionError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' && KNOWN_CODES.has(e.code) ? (e.code as ErrorCode) : 'ERR_INTERNAL';
  return new DiffusionError(code, typeof e?.message === 'string' ? e.message : String(err), { cause: err });
}

/** Calls a native function, converting its errors into DiffusionError. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}
