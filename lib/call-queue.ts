import { DiffusionError } from './errors.js';

/**
 * One pipeline's calls, one at a time: concurrent generate() calls queue and never share native buffers.
 * After close(), new calls fail with ERR_DISPOSED while queued ones still finish.
 */
export class CallQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Throws ERR_DISPOSED once closed (call it before queueing, and again inside the queued call). */
  check(): void {
    if (this.#closed) throw new DiffusionError('ERR_DISPOSED', 'This pipeline has been disposed');
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Closes the queue and waits for the calls already in it; false when it was closed before. */
  async close(): Promise<boolean> {
    if (this.#closed) return false;
    this.#closed = true;
    await this.#tail;
    return true;
  }
}

/** The ERR_ABORTED error of a generation stopped by its AbortSignal. */
export function abortError(signal: AbortSignal): DiffusionError {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new DiffusionError('ERR_ABORTED', `The generation was aborted${reason}`, { cause: signal.reason });
}
