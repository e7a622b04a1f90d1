// LayeredPipeline: the public PipelineLike over our layered pixel-space model (docs/design.md §5.2; models/default is
// the embedded one). Same options, validation messages, queueing, abort, progress and PNG parameters as the
// Stable Diffusion Pipeline; differences, all explicit: the only sampler is DDIM with η = 0 over the shared t
// (others throw ERR_UNSUPPORTED), sizes are multiples of the model's unit (16 px for models/default) from one
// unit up, there is no VAE (the state is the image: `latents` and ProgressEvent.latents are x̂0 or noise in
// pixel space, [1, 3, H, W]) and no clip skip or prompt weighting.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EncodedPrompt, GenerateResult, LoadOptions, PipelineInfo } from './api.js';
import { abortError } from './call-queue.js';
import { DiffusionError, invalid } from './errors.js';
import { bytesPerParameter, layeredActivationBytes, type MemoryEstimate, memoryEstimate } from './estimate.js';
import { layeredGuidance } from './guidance/layered.js';
import { GeneratedImage } from './image/image.js';
import { loadLayeredModel } from './loading/layered.js';
import { readSafetensorsHeader } from './loading/safetensors.js';
import type { LayeredModel } from './native/layered.js';
import { packageRoot } from './native/load.js';
import { TorchGenerator } from './noise/torch-rng.js';
import { type GenerateOptions, type ResolvedOptions, resolveOptions } from './options.js';
import {
  PipelineBase,
  parametersText,
  progressEvent,
  type RunContext,
  reportedSeed,
  resolveLoadOptions,
  timings,
} from './pipeline-base.js';
import { layeredUnit, sampleLayered, toRgbBytes } from './samplers/layered.js';

const MAX_SIDE = 4096;

/** The embedded default model's folder. */
export const defaultModelDir = join(packageRoot, 'models', 'default');

function unsupported(message: string): never {
  throw new DiffusionError('ERR_UNSUPPORTED', message);
}

interface LayeredResolved extends ResolvedOptions {
  /** entropy scaling on for this run ('auto' resolved against the native size) */
  entropy: boolean;
}

export class LayeredPipeline extends PipelineBase<LayeredResolved> {
  readonly info: PipelineInfo;
  readonly model: LayeredModel;
  /** sizes must be multiples of this (and at least this) */
  readonly unit: number;

  constructor(model: LayeredModel, dir: string, threads: number) {
    super();
    this.model = model;
    const cfg = model.config;
    const native = cfg.scales[cfg.scales.length - 1];
    this.unit = layeredUnit(cfg);
    const params = { unet: 0, vae: 0, textEncoder: 0 };
    for (const t of readSafetensorsHeader(join(dir, cfg.weights ?? 'model.safetensors')).tensors) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (t.name.startsWith('model.diffusion_model.')) params.unet += count;
      else if (t.name.startsWith('cond_stage_model.')) params.textEncoder += count;
    }
    const dtype = (cfg as { dtype?: string }).dtype;
    this.info = {
      family: 'layered',
      format: 'layered',
      path: dir,
      nativeWidth: native,
      nativeHeight: native,
      predictionType: 'v_prediction',
      dtype: typeof dtype === 'string' ? dtype.toUpperCase() : 'F32',
      parameters: params,
      defaultSampler: 'ddim',
      defaultSteps: cfg.sampler?.steps ?? 20,
      defaultGuidance: cfg.sampler?.guidance ?? 3,
      samplers: ['ddim'],
      threads,
      device: 'cpu',
    };
  }

  #side(value: unknown, name: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value)) invalid('an integer', name, value);
    if (value % this.unit !== 0) invalid(`a multiple of ${this.unit}`, name, value);
    if (value < this.unit || value > MAX_SIDE) invalid(`a size in [${this.unit}, ${MAX_SIDE}]`, name, value);
    return value;
  }

  /**
   * Memory for a generate() with these options, without running it (validates them as generate() does):
   * the weights and this request's pixel-space maps (both guidance halves when guided). Coarse, from shapes.
   */
  estimate(options: GenerateOptions): MemoryEstimate {
    const o = this.resolve(options);
    const batch = layeredGuidance(o.guidance).unconditional ? 2 : 1;
    const p = this.info.parameters;
    return memoryEstimate((p.unet + p.vae + p.textEncoder) * bytesPerParameter(this.info.dtype), {
      model: layeredActivationBytes(this.model.config, batch, o.height, o.width),
    });
  }

  /** resolveOptions (same messages) plus the layered model's own rules. */
  protected resolve(options: GenerateOptions): LayeredResolved {
    if (options === null || typeof options !== 'object') invalid('an options object', 'options', options);
    const native = this.info.nativeWidth;
    // Sizes and initial noise follow the layered model's unit and pixel-space shape, checked below.
    const { width, height, latents, ...rest } = options;
    const o = resolveOptions(
      { ...rest },
      {
        size: native,
        sampler: 'ddim',
        steps: this.info.defaultSteps,
        guidance: this.info.defaultGuidance,
        samplers: this.info.samplers,
      },
    );
    o.width = width === undefined ? native : this.#side(width, 'width');
    o.height = height === undefined ? native : this.#side(height, 'height');
    if (o.eta !== 0) unsupported(`The layered model samples with ddim η = 0 only; it does not support eta ${o.eta}`);
    if (o.schedule !== 'default' || o.sigmas)
      unsupported('The layered model uses its own shared-time schedule; schedule and sigmas are not supported');
    if (o.clipSkip !== 0) unsupported('The layered model has no clip skip (its text encoder has its own layers)');
    if (latents !== undefined) {
      const n = this.model.config.in_channels * o.height * o.width;
      if (!(latents instanceof Float32Array)) invalid('a Float32Array', 'latents', latents);
      if (latents.length !== n)
        invalid(
          `a Float32Array of ${n} values ([1, ${this.model.config.in_channels}, ${o.height}, ${o.width}])`,
          'latents',
          latents,
        );
      for (let i = 0; i < n; i++)
        if (!Number.isFinite(latents[i])) invalid('finite values', 'latents', `${latents[i]} at index ${i}`);
      o.latents = latents;
    }
    const entropy =
      o.attentionScaling === 'entropy' ||
      (o.attentionScaling === 'auto' && (o.width !== native || o.height !== native));
    return { ...o, entropy };
  }

  protected async encode(prompt: string, clipSkip: number): Promise<EncodedPrompt> {
    if (clipSkip) unsupported('The layered model has no clip skip');
    const ids = this.model.tokenize([prompt]);
    const embeddings = await this.model.encodePrompts([prompt]);
    const end = 49407;
    return { embeddings, tokens: ids.filter((id, i) => i > 0 && id !== end).length, chunks: 1 };
  }

  protected async run(o: LayeredResolved, { signal, checkAbort, t0 }: RunContext): Promise<GenerateResult> {
    const guide = layeredGuidance(o.guidance);
    const context = await this.model.encodePrompts([o.prompt]);
    const uncondContext = guide.unconditional ? await this.model.encodePrompts([o.negativePrompt]) : undefined;
    const textMs = performance.now() - t0;
    checkAbort();

    const C = this.model.config.in_channels;
    const noise = o.latents ?? new TorchGenerator(o.seed).randn([1, C, o.height, o.width]);
    const tDenoise = performance.now();
    const x0 = await sampleLayered(this.model, {
      noise,
      batch: 1,
      height: o.height,
      width: o.width,
      steps: o.steps,
      guidance: o.guidance.scale,
      guide,
      context,
      uncondContext,
      contextTokens: this.model.config.text.max_positions,
      entropyScaling: o.entropy,
      signal,
      onProgress: (p) => o.onProgress?.(progressEvent(p.step, p.steps, tDenoise, p.x0, p)),
    }).catch((err: unknown) => {
      // The sampler's own abort error carries no reason: report the pipeline's.
      if (signal?.aborted) throw abortError(signal);
      throw err;
    });
    const denoiseMs = performance.now() - tDenoise;
    checkAbort();

    const tDecode = performance.now();
    const parameters = this.#parameters(o);
    const bytes = toRgbBytes(x0, 1, o.height, o.width)[0];
    const float = new Float32Array(bytes.length);
    const hw = o.width * o.height;
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < hw; p++) float[p * 3 + c] = Math.min(1, Math.max(0, x0[c * hw + p] / 2 + 0.5));
    const image = new GeneratedImage(o.width, o.height, bytes, parameters, float);
    const decodeMs = performance.now() - tDecode;
    return {
      image,
      latents: x0,
      seed: reportedSeed(o.seed),
      timings: timings({
        textMs,
        denoiseMs,
        decodeMs,
        totalMs: performance.now() - t0,
        perStepMs: denoiseMs / o.steps,
      }),
      parameters,
    };
  }

  /** A1111-style parameters text (as Pipeline's). */
  #parameters(o: LayeredResolved): string {
    return parametersText(o, 'shifted-cosine', 'layered', [['Attention scaling', o.entropy ? 'entropy' : 'none']]);
  }

  protected async disposeModels(): Promise<void> {
    this.model.dispose();
  }
}

/** Opens a layered model folder (default: the embedded model) as a pipeline. */
export async function loadLayeredPipeline(
  dir: string = defaultModelDir,
  options: LoadOptions = {},
): Promise<LayeredPipeline> {
  if (options.config !== undefined || options.prediction !== undefined)
    unsupported(
      'A layered model reads its whole configuration from its config.json: config and prediction are not supported',
    );
  const { threads } = resolveLoadOptions(options);
  const model = loadLayeredModel(dir, { threads });
  try {
    return new LayeredPipeline(model, dir, threads);
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** Whether `path` is a folder holding a layered model's config.json. */
export function isLayeredModelDir(path: string): boolean {
  try {
    const config = JSON.parse(readFileSync(join(path, 'config.json'), 'utf8')) as { format?: unknown };
    return config.format === 'native-diffusion-layered';
  } catch {
    return false;
  }
}
