// What every pipeline shares, written once: load-option validation, the call queue (one call at a time, ERR_DISPOSED
// after dispose), the generate() / encodePrompt() frames (synchronous validation errors become rejections, abort
// before and between stages), progress events, timings and the A1111-style parameters text. Pipeline (Stable
// Diffusion families) and LayeredPipeline (our layered model) supply only resolution and the run itself.
import type { EncodedPrompt, GenerateResult, LoadOptions, PipelineInfo, PipelineLike, Timings } from './api.js';
import { abortError, CallQueue } from './call-queue.js';
import { DiffusionError, invalid } from './errors.js';
import { packageVersion } from './native/load.js';
import { type GenerateOptions, type ProgressEvent, type ResolvedOptions, rejectUnknownKeys } from './options.js';

/** The `threads` of LoadOptions, checked; rejects device 'cuda' (model execution runs on the CPU today). */
export function resolveLoadOptions(options: LoadOptions): { threads: number } {
  if (options === null || typeof options !== 'object') invalid('an options object', 'options', options);
  rejectUnknownKeys(options, ['threads', 'device', 'config', 'prediction'], 'load options');
  if (options.prediction !== undefined && !['epsilon', 'v_prediction'].includes(options.prediction))
    invalid('one of epsilon, v_prediction', 'prediction', options.prediction);
  const config = options.config as unknown;
  if (config !== undefined && (config === null || typeof config !== 'object' || Array.isArray(config)))
    invalid('a partial model config object', 'config', config);
  const threads = options.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0 || threads > 1024)
    invalid('an integer in [0, 1024]', 'threads', threads);
  const device = options.device ?? 'auto';
  if (!['auto', 'cpu', 'cuda'].includes(device)) invalid('one of auto, cpu, cuda', 'device', device);
  if (device === 'cuda') {
    throw new DiffusionError('ERR_NO_CUDA', 'Model execution on CUDA is not available yet: use device "cpu" or "auto"');
  }
  return { threads };
}

/** One run's abort check and clock, handed to the pipeline's run(). */
export interface RunContext {
  readonly signal?: AbortSignal;
  /** throws ERR_ABORTED once the signal fired */
  checkAbort(): void;
  /** performance.now() when the run started */
  readonly t0: number;
}

export abstract class PipelineBase<R extends ResolvedOptions> implements PipelineLike {
  abstract readonly info: PipelineInfo;
  readonly #calls = new CallQueue();

  /** Validates and completes the options (synchronously; errors reject generate()'s promise). */
  protected abstract resolve(options: GenerateOptions): R;
  /** Runs one generation; called from the queue. */
  protected abstract run(o: R, ctx: RunContext): Promise<GenerateResult>;
  protected abstract encode(prompt: string, clipSkip: number): Promise<EncodedPrompt>;
  /** Frees the native models (after the queue has drained). */
  protected abstract disposeModels(): Promise<void>;

  generate(options: GenerateOptions): Promise<GenerateResult> {
    try {
      this.#calls.check();
      const o = this.resolve(options);
      if (o.signal?.aborted) throw abortError(o.signal);
      return this.#calls.run(() => {
        const { signal } = o;
        const checkAbort = () => {
          if (signal?.aborted) throw abortError(signal);
        };
        checkAbort();
        return this.run(o, { signal, checkAbort, t0: performance.now() });
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async encodePrompt(
    prompt: string,
    options: { clipSkip?: number; signal?: AbortSignal } = {},
  ): Promise<EncodedPrompt> {
    this.#calls.check();
    if (typeof prompt !== 'string') invalid('a string', 'prompt', prompt);
    return this.#calls.run(() => this.encode(prompt, options.clipSkip ?? 0));
  }

  async dispose(): Promise<void> {
    if (!(await this.#calls.close())) return;
    await this.disposeModels();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/** The ProgressEvent after `step` of `steps`, timed from `tStart` (the start of denoising). */
export function progressEvent(
  step: number,
  steps: number,
  tStart: number,
  latents: Float32Array,
  solver: { iterations?: number; converged?: boolean } = {},
): ProgressEvent {
  const elapsedMs = performance.now() - tStart;
  return {
    step,
    steps,
    fraction: step / steps,
    elapsedMs,
    etaMs: (elapsedMs / step) * (steps - step),
    latents,
    ...(solver.iterations === undefined ? {} : { iterations: solver.iterations }),
    ...(solver.converged === undefined ? {} : { converged: solver.converged }),
  };
}

/** Timings with the process's peak RSS. */
export function timings(t: Omit<Timings, 'peakRssBytes'>): Timings {
  return { ...t, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
}

/** The seed as GenerateResult reports it: a number when it is exactly representable. */
export function reportedSeed(seed: bigint): number | bigint {
  return seed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seed) : seed;
}

/**
 * The A1111-style parameters text written into the PNG: prompt, negative prompt, then `Key: value` fields.
 * `scheduleType` and `family` differ per pipeline; `extra` fields go after the guidance ones.
 */
export function parametersText(
  o: ResolvedOptions,
  scheduleType: string,
  family: string,
  extra: [string, string | number][],
): string {
  const g = o.guidance;
  const fields: [string, string | number][] = [
    ['Steps', o.steps],
    ['Sampler', o.sampler],
    ['Schedule type', scheduleType],
    [g.method === 'cfg++' ? 'CFG++ lambda' : 'CFG scale', g.scale],
    ['Seed', o.seed.toString()],
    ['Size', `${o.width}x${o.height}`],
    ['Model family', family],
    ['Guidance', g.method],
  ];
  if (g.schedule !== 'constant') fields.push(['Guidance schedule', g.schedule]);
  if (g.rescale > 0) fields.push(['Guidance rescale', g.rescale]);
  fields.push(...extra);
  fields.push(['Version', `native-diffusion ${packageVersion}`]);
  const neg = o.negativePrompt ? `\nNegative prompt: ${o.negativePrompt}` : '';
  return `${o.prompt}${neg}\n${fields.map(([k, v]) => `${k}: ${v}`).join(', ')}`;
}
