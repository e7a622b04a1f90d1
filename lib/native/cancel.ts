// Abort within a native call: every native model call takes an optional `cancel` Int32Array (native/addon/
// model_call.h); setting its element 0 makes the model stop between layers (between tiles in the tiled VAE)
// and reject with ERR_ABORTED. withCancel wires an AbortSignal to such a flag for the duration of one call.
import { abortError } from '../call-queue.js';

export async function withCancel<T>(
  signal: AbortSignal | undefined,
  call: (cancel: Int32Array | undefined) => Promise<T>,
): Promise<T> {
  if (!signal) return call(undefined);
  const flag = new Int32Array(1);
  const onAbort = () => Atomics.store(flag, 0, 1);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await call(flag);
  } catch (err) {
    // The native side only knows that it stopped; the signal knows why.
    if (signal.aborted && (err as { code?: unknown })?.code === 'ERR_ABORTED') throw abortError(signal);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
