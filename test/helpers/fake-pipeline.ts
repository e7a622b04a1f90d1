// A stand-in PipelineLike for fast service tests: validates options with the library's own
// resolveOptions, sleeps stepMs per step (timers, so the event loop stays free as with the native
// worker), reports progress with latents, honours AbortSignal between steps and returns a small
// image whose colour depends on the seed.
import type { GenerateResult, PipelineInfo, PipelineLike } from '../../lib/api.js';
import { DiffusionError } from '../../lib/errors.js';
import type { MemoryEstimate } from '../../lib/estimate.js';
import { GeneratedImage } from '../../lib/image/image.js';
import { type GenerateOptions, resolveOptions, SAMPLERS } from '../../lib/options.js';

export interface FakeOptions {
  stepMs?: number;
  /** the samplers it claims to run (default: all) */
  samplers?: string[];
  nativeSize?: number;
  defaultSteps?: number;
}

export class FakePipeline implements PipelineLike {
  readonly info: PipelineInfo;
  generated = 0;
  /** steps completed, over all calls */
  stepsRun = 0;
  aborted = 0;
  disposed = false;
  private readonly stepMs: number;

  constructor(options: FakeOptions = {}) {
    const size = options.nativeSize ?? 64;
    this.stepMs = options.stepMs ?? 20;
    this.info = {
      family: 'sd1',
      format: 'single-file',
      path: 'fake.safetensors',
      nativeWidth: size,
      nativeHeight: size,
      predictionType: 'epsilon',
      dtype: 'F32',
      parameters: { unet: 1, vae: 1, textEncoder: 1 },
      defaultSampler: 'euler',
      defaultSteps: options.defaultSteps ?? 4,
      defaultGuidance: 7.5,
      samplers: options.samplers ?? SAMPLERS,
      threads: 1,
      device: 'cpu',
    };
  }

  #resolve(options: GenerateOptions) {
    return resolveOptions(options, {
      size: this.info.nativeWidth,
      sampler: 'euler',
      steps: this.info.defaultSteps,
      samplers: this.info.samplers,
    });
  }

  /** 1 MiB of weights, 1 KiB of activations per pixel (round numbers for the admission tests). */
  estimate(options: GenerateOptions): MemoryEstimate {
    const o = this.#resolve(options);
    const activationBytes = o.width * o.height * 1024;
    return {
      weightsBytes: 2 ** 20,
      activationBytes,
      totalBytes: 2 ** 20 + activationBytes,
      stages: {},
      method: 'shapes',
    };
  }

  async generate(options: GenerateOptions): Promise<GenerateResult> {
    if (this.disposed) throw new DiffusionError('ERR_DISPOSED', 'The pipeline was disposed');
    const o = this.#resolve(options);
    const started = Date.now();
    const latents = new Float32Array(4 * (o.width / 8) * (o.height / 8));
    for (let step = 1; step <= o.steps; step++) {
      if (o.signal?.aborted) {
        this.aborted++;
        throw new DiffusionError('ERR_ABORTED', 'The generation was aborted');
      }
      await new Promise((resolve) => setTimeout(resolve, this.stepMs));
      this.stepsRun++;
      latents.fill(Math.sin(step + Number(o.seed % 1000n)));
      const elapsedMs = Date.now() - started;
      const event = {
        step,
        steps: o.steps,
        fraction: step / o.steps,
        elapsedMs,
        etaMs: (elapsedMs / step) * (o.steps - step),
        latents,
      };
      o.onProgress?.(event);
    }
    if (o.signal?.aborted) {
      this.aborted++;
      throw new DiffusionError('ERR_ABORTED', 'The generation was aborted');
    }
    const data = new Uint8Array(o.width * o.height * 3);
    const shade = Number(o.seed % 256n);
    for (let i = 0; i < data.length; i += 3) data.set([shade, 255 - shade, 128], i);
    const parameters = `${o.prompt}\nSteps: ${o.steps}, Sampler: ${o.sampler}, Seed: ${o.seed}, Size: ${o.width}x${o.height}`;
    this.generated++;
    const total = Date.now() - started;
    return {
      image: new GeneratedImage(o.width, o.height, data, parameters),
      latents,
      seed: o.seed,
      parameters,
      timings: {
        textMs: 0,
        denoiseMs: total,
        decodeMs: 0,
        totalMs: total,
        perStepMs: total / o.steps,
        peakRssBytes: process.memoryUsage().rss,
      },
    };
  }

  async encodePrompt(): Promise<never> {
    throw new DiffusionError('ERR_UNSUPPORTED', 'not in the fake pipeline');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
