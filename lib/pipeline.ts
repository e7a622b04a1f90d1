// loadPipeline(): a Stable Diffusion checkpoint (single file or diffusers folder) → Pipeline.
// The denoising loop runs here, in TypeScript: per model call it awaits one native U-Net evaluation
// (both CFG halves batched, off the main thread), combines guidance and applies the sampler step —
// the latent is ~16K floats at 512², so this arithmetic is microseconds against seconds of U-Net.
import type { EncodedPrompt, GenerateResult, LoadOptions, PipelineInfo, PipelineLike, Timings } from './api.js';
import { abortError, CallQueue } from './call-queue.js';
import { DiffusionError, invalid } from './errors.js';
import { nativeLatentSizeFor } from './guidance/attention-scaling.js';
import { modelInputAlphaBar } from './guidance/characteristic-step.js';
import { scheduledWeight } from './guidance/schedule.js';
import { guidedModelCall } from './guidance/step.js';
import { decodedToRGB, GeneratedImage } from './image/image.js';
import { isLayeredModelDir, type LayeredPipeline, loadLayeredPipeline } from './layered-pipeline.js';
import { type DetectedModel, detectModel } from './loading/detect.js';
import type { ModelConfig } from './loading/types.js';
import { packageVersion } from './native/load.js';
import { ClipTextEncoder } from './native/text-encoder.js';
import { NativeUNet } from './native/unet.js';
import { Vae } from './native/vae.js';
import { toNativeWeights } from './native/weights.js';
import { TorchGenerator } from './noise/torch-rng.js';
import {
  type GenerateOptions,
  type ResolvedOptions,
  rejectUnknownKeys,
  resolveOptions,
  SAMPLERS,
  type SamplerName,
} from './options.js';
import { createSampler, samplerForDiffusersClass } from './samplers/index.js';
import { matchChunkCounts, type PromptChunk, promptToChunks } from './text/prompt.js';
import { applyChunkWeights } from './text/weighting.js';
import { ClipTokenizer } from './tokenizer/clip-bpe.js';

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function defaultSampler(config: ModelConfig): SamplerName {
  return (samplerForDiffusersClass(config.scheduler.className) ??
    (config.family === 'sd1' ? 'pndm' : 'ddim')) as SamplerName;
}

export class Pipeline implements PipelineLike {
  readonly info: PipelineInfo;
  readonly config: ModelConfig;
  readonly #tokenizer: ClipTokenizer;
  readonly #textEncoder: ClipTextEncoder;
  readonly #unet: NativeUNet;
  readonly #vae: Vae;
  readonly #calls = new CallQueue();

  constructor(detected: DetectedModel, threads: number) {
    const config = detected.config;
    this.config = config;
    const weights = detected.weights;
    this.#tokenizer = ClipTokenizer.load(undefined, {
      padToken: config.textEncoder.padToken === 0 ? '!' : '<|endoftext|>',
    });
    this.#textEncoder = new ClipTextEncoder(toNativeWeights(weights, ['cond_stage_model.']), config.textEncoder, {
      threads,
    });
    this.#unet = NativeUNet.create(weights, config.unet, { threads });
    this.#vae = new Vae(toNativeWeights(weights, ['first_stage_model.']), config.vae, { threads });
    const c = detected.components;
    this.info = {
      family: config.family,
      format: detected.format,
      path: detected.path,
      nativeWidth: config.nativeSize,
      nativeHeight: config.nativeSize,
      predictionType: config.scheduler.predictionType,
      dtype: config.dtype,
      parameters: { unet: c.unet.parameters, vae: c.vae.parameters, textEncoder: c.textEncoder.parameters },
      defaultSampler: defaultSampler(config),
      defaultSteps: 25,
      defaultGuidance: 7.5,
      samplers: SAMPLERS,
      threads,
      device: 'cpu',
    };
  }

  async #encodeChunks(chunks: PromptChunk[], clipSkip: number): Promise<Float32Array> {
    const ids = new Int32Array(chunks.length * 77);
    chunks.forEach((c, k) => ids.set(c.ids, k * 77));
    const z = await this.#textEncoder.encode(ids, { clipSkip });
    return applyChunkWeights(
      z,
      chunks.map((c) => c.weights),
      this.config.textEncoder.hidden,
    );
  }

  async encodePrompt(
    prompt: string,
    options: { clipSkip?: number; signal?: AbortSignal } = {},
  ): Promise<EncodedPrompt> {
    this.#calls.check();
    if (typeof prompt !== 'string') invalid('a string', 'prompt', prompt);
    const chunks = promptToChunks(this.#tokenizer, prompt);
    const embeddings = await this.#calls.run(() => this.#encodeChunks(chunks, options.clipSkip ?? 0));
    return {
      embeddings,
      tokens: chunks.reduce(
        (n, c) => n + c.ids.filter((id, i) => i > 0 && id !== 49407 && id !== this.config.textEncoder.padToken).length,
        0,
      ),
      chunks: chunks.length,
    };
  }

  generate(options: GenerateOptions): Promise<GenerateResult> {
    try {
      this.#calls.check();
      const o = resolveOptions(options, {
        size: this.config.nativeSize,
        sampler: this.info.defaultSampler as SamplerName,
        steps: this.info.defaultSteps,
        guidance: this.info.defaultGuidance,
        samplers: this.info.samplers,
      });
      const prediction = this.config.scheduler.predictionType;
      if (o.guidance.method === 'characteristic' && prediction !== 'epsilon' && prediction !== 'v_prediction') {
        throw new DiffusionError(
          'ERR_UNSUPPORTED',
          `Characteristic guidance needs an epsilon or v_prediction model, not ${prediction}`,
        );
      }
      if (o.signal?.aborted) throw abortError(o.signal);
      return this.#calls.run(() => this.#generate(o));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #generate(o: ResolvedOptions): Promise<GenerateResult> {
    const t0 = performance.now();
    const { signal } = o;
    const checkAbort = () => {
      if (signal?.aborted) throw abortError(signal);
    };
    checkAbort();
    const { method } = o.guidance;
    // diffusers skips the unconditional half when w <= 1 (plain CFG only).
    const guided = method !== 'cfg' || o.guidance.scale > 1 || o.guidance.schedule !== 'constant';

    // Text.
    let cond = promptToChunks(this.#tokenizer, o.prompt);
    let uncond = promptToChunks(this.#tokenizer, o.negativePrompt);
    ({ cond, uncond } = matchChunkCounts(this.#tokenizer, cond, uncond));
    const tokens = cond.length * 77;
    const C = this.config.textEncoder.hidden;
    const condEmb = await this.#encodeChunks(cond, o.clipSkip);
    const context = guided ? concat(await this.#encodeChunks(uncond, o.clipSkip), condEmb) : condEmb;
    const textMs = performance.now() - t0;
    checkAbort();

    // Noise and sampler.
    const h = o.height / 8;
    const w = o.width / 8;
    const latentShape = [1, this.config.unet.inChannels, h, w];
    const n = this.config.unet.inChannels * h * w;
    const generator = new TorchGenerator(o.seed);
    const sampler = createSampler(o.sampler, {
      steps: o.steps,
      config: this.config.scheduler,
      schedule: o.schedule,
      sigmas: o.sigmas,
      eta: o.eta,
    });
    const init = o.latents ?? generator.randn(latentShape);
    let x: Float32Array = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = init[i] * sampler.initNoiseSigma;

    const native = this.config.nativeSize / 8;
    const forwardOptions = {
      nativeLatentSize: nativeLatentSizeFor(o.attentionScaling, { h, w }, { h: native, w: native }),
    };

    const calls = sampler.modelCalls;
    // Progress counts denoising steps, not model calls (PNDM makes steps + 1 calls, Heun 2·steps − 1):
    // after call i, floor((i + 1)·steps / calls) steps are done; an event goes out when that advances.
    const denoisingSteps = o.sigmas ? o.sigmas.length - 1 : o.steps;
    let reported = 0;
    const tDenoise = performance.now();
    let unetMs = 0;
    for (let i = 0; i < calls; i++) {
      checkAbort();
      const xin = sampler.scaleModelInput(x, i);
      const t = sampler.timestep(i);
      const r = await guidedModelCall({
        unet: this.#unet,
        method,
        guided,
        weight: scheduledWeight(o.guidance.scale, i, calls, o.guidance.schedule),
        rescale: o.guidance.rescale,
        xin,
        channels: latentShape[1],
        height: h,
        width: w,
        timestep: t,
        context,
        tokens,
        contextDim: C,
        forwardOptions,
        prediction: this.config.scheduler.predictionType,
        alphaBar: () => modelInputAlphaBar(sampler, i, this.config),
        checkAbort,
      });
      unetMs += r.unetMs;
      checkAbort();
      x = sampler.step(r.output, i, x, { noise: () => generator.randn(latentShape), uncondOutput: r.uncondOutput });
      const iterations = r.iterations;
      const elapsedMs = performance.now() - tDenoise;
      const step = Math.floor(((i + 1) * denoisingSteps) / calls);
      if (step === reported) continue;
      reported = step;
      o.onProgress?.({
        step,
        steps: denoisingSteps,
        fraction: step / denoisingSteps,
        elapsedMs,
        etaMs: (elapsedMs / (i + 1)) * (calls - i - 1),
        latents: x,
        ...(iterations === undefined ? {} : { iterations }),
        ...(r.converged === undefined ? {} : { converged: r.converged }),
      });
    }
    const denoiseMs = performance.now() - tDenoise;
    checkAbort();

    // Decode.
    const tDecode = performance.now();
    const scaled = new Float32Array(n);
    for (let i = 0; i < n; i++) scaled[i] = x[i] / this.config.vae.scalingFactor;
    const tile = o.vaeTiling === 'auto' ? o.width * o.height > 1024 * 1024 : o.vaeTiling;
    const pixels = await this.#vae.decode(scaled, latentShape as [number, number, number, number], { tile });
    const decodeMs = performance.now() - tDecode;
    const parameters = this.#parameters(o);
    const rgb = decodedToRGB(pixels, o.width, o.height);
    const image = new GeneratedImage(o.width, o.height, rgb.bytes, parameters, rgb.float);
    const totalMs = performance.now() - t0;
    const timings: Timings = {
      textMs,
      denoiseMs,
      decodeMs,
      totalMs,
      perStepMs: unetMs / calls,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
    const seed = o.seed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(o.seed) : o.seed;
    return { image, latents: x, seed, timings, parameters };
  }

  /** A1111-style parameters text. */
  #parameters(o: ResolvedOptions): string {
    const g = o.guidance;
    const fields: [string, string | number][] = [
      ['Steps', o.steps],
      ['Sampler', o.sampler],
      ['Schedule type', o.sigmas ? 'custom' : o.schedule],
      [g.method === 'cfg++' ? 'CFG++ lambda' : 'CFG scale', g.scale],
      ['Seed', o.seed.toString()],
      ['Size', `${o.width}x${o.height}`],
      ['Model family', this.config.family],
      ['Guidance', g.method],
    ];
    if (g.schedule !== 'constant') fields.push(['Guidance schedule', g.schedule]);
    if (g.rescale > 0) fields.push(['Guidance rescale', g.rescale]);
    if (o.attentionScaling !== 'auto') fields.push(['Attention scaling', o.attentionScaling]);
    if (o.clipSkip > 0) fields.push(['Clip skip', o.clipSkip + 1]);
    if (o.sampler === 'ddim' && o.eta > 0) fields.push(['Eta', o.eta]);
    fields.push(['Version', `native-diffusion ${packageVersion}`]);
    const neg = o.negativePrompt ? `\nNegative prompt: ${o.negativePrompt}` : '';
    return `${o.prompt}${neg}\n${fields.map(([k, v]) => `${k}: ${v}`).join(', ')}`;
  }

  async dispose(): Promise<void> {
    if (!(await this.#calls.close())) return;
    await this.#textEncoder[Symbol.asyncDispose]();
    await this.#unet[Symbol.asyncDispose]();
    await this.#vae[Symbol.asyncDispose]();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/**
 * Opens a model and maps its weights (zero copy); the returned pipeline owns native memory until disposed.
 * No path: the embedded default model (models/default, a layered pixel-space model) as a LayeredPipeline.
 * A folder whose config.json has "format": "native-diffusion-layered": a LayeredPipeline. Otherwise a Stable
 * Diffusion checkpoint (single file or diffusers folder): a Pipeline.
 */
export async function loadPipeline(path?: undefined, options?: LoadOptions): Promise<LayeredPipeline>;
export async function loadPipeline(path: string, options?: LoadOptions): Promise<Pipeline | LayeredPipeline>;
export async function loadPipeline(path?: string, options: LoadOptions = {}): Promise<Pipeline | LayeredPipeline> {
  if (options === null || typeof options !== 'object') invalid('an options object', 'options', options);
  rejectUnknownKeys(options, ['threads', 'device', 'config', 'prediction'], 'load options');
  if (options.prediction !== undefined && !['epsilon', 'v_prediction'].includes(options.prediction))
    invalid('one of epsilon, v_prediction', 'prediction', options.prediction);
  if (
    options.config !== undefined &&
    (options.config === null || typeof options.config !== 'object' || Array.isArray(options.config))
  )
    invalid('a partial model config object', 'config', options.config);
  if (path === undefined) return loadLayeredPipeline(undefined, options);
  if (typeof path !== 'string' || path.length === 0) invalid('a checkpoint path', 'path', path);
  if (isLayeredModelDir(path)) return loadLayeredPipeline(path, options);
  const threads = options.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0 || threads > 1024)
    invalid('an integer in [0, 1024]', 'threads', threads);
  const device = options.device ?? 'auto';
  if (!['auto', 'cpu', 'cuda'].includes(device)) invalid('one of auto, cpu, cuda', 'device', device);
  if (device === 'cuda') {
    throw new DiffusionError('ERR_NO_CUDA', 'Model execution on CUDA is not available yet: use device "cpu" or "auto"');
  }
  const detected = detectModel(path, { config: options.config as never, prediction: options.prediction });
  if (detected.config.family === 'sdxl' || detected.config.family === 'unknown') {
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `Expected a Stable Diffusion 1.x or 2.x checkpoint for ${path} but received family ${detected.config.family}`,
    );
  }
  // Building the native graphs maps the files and validates every tensor's shape.
  return new Pipeline(detected, threads);
}
