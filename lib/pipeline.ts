// Pipeline: a Stable Diffusion-style checkpoint run as its family description says (lib/families.ts: text encoders,
// added conditioning, default sampler); loadPipeline (lib/load-pipeline.ts) picks the description. The denoising
// loop runs here, in TypeScript: per model call it awaits one native U-Net evaluation (both CFG halves batched, off
// the main thread), combines guidance and applies the sampler step — the latent is ~16K floats at 512², so this
// arithmetic is microseconds against seconds of U-Net.
import type { EncodedPrompt, GenerateResult, PipelineInfo } from './api.js';
import { concat } from './arrays.js';
import { DiffusionError, invalid } from './errors.js';
import {
  bytesPerParameter,
  type MemoryEstimate,
  memoryEstimate,
  unetActivationBytes,
  vaeDecodeBytes,
} from './estimate.js';
import { defaultSamplerFor, type FamilySpec, familySpec, type TextEncoderSpec } from './families.js';
import { nativeLatentSizeFor } from './guidance/attention-scaling.js';
import { modelInputAlphaBar } from './guidance/characteristic-step.js';
import { scheduledWeight } from './guidance/schedule.js';
import { guidedModelCall } from './guidance/step.js';
import { decodedToRGB, GeneratedImage } from './image/image.js';
import type { DetectedModel } from './loading/detect.js';
import type { ModelConfig, TextEncoderConfig } from './loading/types.js';
import { ClipTextEncoder } from './native/text-encoder.js';
import { NativeUNet } from './native/unet.js';
import { Vae } from './native/vae.js';
import { toNativeWeights } from './native/weights.js';
import { TorchGenerator } from './noise/torch-rng.js';
import { type GenerateOptions, type ResolvedOptions, resolveOptions, SAMPLERS } from './options.js';
import {
  PipelineBase,
  parametersText,
  progressEvent,
  type RunContext,
  reportedSeed,
  timings,
} from './pipeline-base.js';
import { createSampler } from './samplers/index.js';
import { matchChunkCounts, type PromptChunk, promptToChunks } from './text/prompt.js';
import { applyChunkWeights } from './text/weighting.js';
import { ClipTokenizer } from './tokenizer/clip-bpe.js';

/** token positions per prompt chunk (start + 75 + end) */
const CHUNK_TOKENS = 77;
const END_TOKEN = 49407;

/** One of the family's text encoders, opened. */
interface TextEncoderSlot {
  spec: TextEncoderSpec;
  config: TextEncoderConfig;
  tokenizer: ClipTokenizer;
  encoder: ClipTextEncoder;
}

/** [tokens, C_0] ‖ [tokens, C_1] ‖ … → [tokens, ΣC] (one encoder: the array itself). */
function concatChannels(parts: Float32Array[], channels: number[], tokens: number): Float32Array {
  if (parts.length === 1) return parts[0];
  const total = channels.reduce((a, b) => a + b, 0);
  const out = new Float32Array(tokens * total);
  for (let t = 0; t < tokens; t++) {
    let offset = t * total;
    parts.forEach((p, e) => {
      out.set(p.subarray(t * channels[e], (t + 1) * channels[e]), offset);
      offset += channels[e];
    });
  }
  return out;
}

export class Pipeline extends PipelineBase<ResolvedOptions> {
  readonly info: PipelineInfo;
  readonly config: ModelConfig;
  readonly family: FamilySpec;
  readonly #text: TextEncoderSlot[] = [];
  readonly #unet: NativeUNet;
  readonly #vae: Vae;

  /** Opens the native models of a detected checkpoint (`family` defaults to the description of its family). */
  constructor(detected: DetectedModel, threads: number, family?: FamilySpec) {
    super();
    const config = detected.config;
    this.config = config;
    const spec = family ?? familySpec(config.family);
    if (!spec)
      throw new DiffusionError('ERR_UNSUPPORTED', `No pipeline description runs model family ${config.family}`);
    if (spec.addedConditioning || spec.textEncoders.some((e) => e.pooled)) {
      // The description is ready for it; the native U-Net's label embedding (issue 11's U-Net config) is not yet.
      throw new DiffusionError(
        'ERR_UNSUPPORTED',
        `Model family ${config.family} needs added conditioning (pooled text, time ids), which the native U-Net does not take yet`,
      );
    }
    this.family = spec;
    const weights = detected.weights;
    try {
      for (const e of spec.textEncoders) {
        const c = e.config(config);
        this.#text.push({
          spec: e,
          config: c,
          tokenizer: ClipTokenizer.load(undefined, e.tokenizer(c)),
          encoder: new ClipTextEncoder(toNativeWeights(weights, [e.prefix]), c, { threads }),
        });
      }
      this.#unet = NativeUNet.create(weights, config.unet, { threads });
      this.#vae = new Vae(toNativeWeights(weights, ['first_stage_model.']), config.vae, { threads });
    } catch (err) {
      for (const t of this.#text) t.encoder.dispose();
      throw err;
    }
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
      defaultSampler: defaultSamplerFor(spec, config),
      defaultSteps: spec.defaultSteps,
      defaultGuidance: 7.5,
      samplers: SAMPLERS,
      threads,
      device: 'cpu',
    };
  }

  /** cross-attention context width: the encoders' hidden sizes together */
  get contextDim(): number {
    return this.#text.reduce((n, t) => n + t.config.hidden, 0);
  }

  /** Each encoder's 77-token chunks of `prompt`, from its own tokenizer. */
  #chunks(prompt: string): PromptChunk[][] {
    return this.#text.map((t) => promptToChunks(t.tokenizer, prompt));
  }

  /** The context [1, 77·chunks, ΣC]: each encoder's weighted hidden states, side by side along channels. */
  async #encodeChunks(chunks: PromptChunk[][], clipSkip: number): Promise<Float32Array> {
    const parts: Float32Array[] = [];
    for (const [e, t] of this.#text.entries()) {
      const ids = new Int32Array(chunks[e].length * CHUNK_TOKENS);
      chunks[e].forEach((c, k) => ids.set(c.ids, k * CHUNK_TOKENS));
      const state = t.spec.hiddenState(t.config);
      const layersToRun = state.layersToRun - clipSkip;
      if (!Number.isInteger(clipSkip) || clipSkip < 0 || layersToRun < 0)
        invalid(`an integer in [0, ${state.layersToRun}]`, 'options.clipSkip', clipSkip);
      const z = await t.encoder.encode(ids, { layersToRun, finalLayerNorm: state.finalLayerNorm });
      parts.push(
        applyChunkWeights(
          z,
          chunks[e].map((c) => c.weights),
          t.config.hidden,
        ),
      );
    }
    return concatChannels(
      parts,
      this.#text.map((t) => t.config.hidden),
      chunks[0].length * CHUNK_TOKENS,
    );
  }

  protected async encode(prompt: string, clipSkip: number): Promise<EncodedPrompt> {
    const chunks = this.#chunks(prompt);
    const embeddings = await this.#encodeChunks(chunks, clipSkip);
    const pad = this.#text[0].config.padToken;
    return {
      embeddings,
      tokens: chunks[0].reduce(
        (n, c) => n + c.ids.filter((id, i) => i > 0 && id !== END_TOKEN && id !== pad).length,
        0,
      ),
      chunks: chunks[0].length,
    };
  }

  /**
   * Memory for a generate() with these options, without running it: the weights (shared by all requests)
   * and this request's activations (U-Net at its size with both CFG halves when guided, the VAE decode,
   * tiled or not). Validates the options as generate() does. Derived from shapes (lib/estimate.ts).
   */
  estimate(options: GenerateOptions): MemoryEstimate {
    const o = this.resolve(options);
    const h = o.height / 8;
    const w = o.width / 8;
    const guided = o.guidance.method !== 'cfg' || o.guidance.scale > 1 || o.guidance.schedule !== 'constant';
    const batch = guided ? 2 : 1;
    const tile = o.vaeTiling === 'auto' ? o.width * o.height > 1024 * 1024 : o.vaeTiling;
    const p = this.info.parameters;
    return memoryEstimate((p.unet + p.vae + p.textEncoder) * bytesPerParameter(this.info.dtype), {
      unet: unetActivationBytes(this.config.unet, batch, h, w) + 2 * 4 * batch * this.config.unet.inChannels * h * w,
      vae: vaeDecodeBytes(this.config.vae, h, w, tile),
    });
  }

  protected resolve(options: GenerateOptions): ResolvedOptions {
    const o = resolveOptions(options, {
      size: this.config.nativeSize,
      sampler: this.info.defaultSampler as ResolvedOptions['sampler'],
      steps: this.info.defaultSteps,
      guidance: this.info.defaultGuidance,
      samplers: this.info.samplers,
    });
    // the native U-Net takes latent sides in multiples of 8 (it halves them up to three times and joins
    // the skips unresized), so pixel sides are multiples of 64; found here, not after the text encoder ran
    const multiple = 64;
    if (options.width !== undefined && o.width % multiple !== 0) invalid(`a multiple of ${multiple}`, 'width', o.width);
    if (options.height !== undefined && o.height % multiple !== 0)
      invalid(`a multiple of ${multiple}`, 'height', o.height);
    const prediction = this.config.scheduler.predictionType;
    if (o.guidance.method === 'characteristic' && prediction !== 'epsilon' && prediction !== 'v_prediction') {
      throw new DiffusionError(
        'ERR_UNSUPPORTED',
        `Characteristic guidance needs an epsilon or v_prediction model, not ${prediction}`,
      );
    }
    return o;
  }

  protected async run(o: ResolvedOptions, { checkAbort, t0 }: RunContext): Promise<GenerateResult> {
    const { method } = o.guidance;
    // diffusers skips the unconditional half when w <= 1 (plain CFG only).
    const guided = method !== 'cfg' || o.guidance.scale > 1 || o.guidance.schedule !== 'constant';

    // Text: every encoder's chunks, the negative prompt's padded to the prompt's count (and vice versa).
    const cond = this.#chunks(o.prompt);
    const uncond = this.#chunks(o.negativePrompt);
    this.#text.forEach((t, e) => {
      ({ cond: cond[e], uncond: uncond[e] } = matchChunkCounts(t.tokenizer, cond[e], uncond[e]));
    });
    const tokens = cond[0].length * CHUNK_TOKENS;
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
        contextDim: this.contextDim,
        forwardOptions,
        prediction: this.config.scheduler.predictionType,
        alphaBar: () => modelInputAlphaBar(sampler, i, this.config),
        checkAbort,
      });
      unetMs += r.unetMs;
      checkAbort();
      x = sampler.step(r.output, i, x, { noise: () => generator.randn(latentShape), uncondOutput: r.uncondOutput });
      const step = Math.floor(((i + 1) * denoisingSteps) / calls);
      if (step === reported) continue;
      reported = step;
      // the ETA from model calls (they take the time), the count in denoising steps
      o.onProgress?.({
        ...progressEvent(i + 1, calls, tDenoise, x, r),
        step,
        steps: denoisingSteps,
        fraction: step / denoisingSteps,
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
    return {
      image,
      latents: x,
      seed: reportedSeed(o.seed),
      timings: timings({ textMs, denoiseMs, decodeMs, totalMs: performance.now() - t0, perStepMs: unetMs / calls }),
      parameters,
    };
  }

  /** A1111-style parameters text. */
  #parameters(o: ResolvedOptions): string {
    const extra: [string, string | number][] = [];
    if (o.attentionScaling !== 'auto') extra.push(['Attention scaling', o.attentionScaling]);
    if (o.clipSkip > 0) extra.push(['Clip skip', o.clipSkip + 1]);
    if (o.sampler === 'ddim' && o.eta > 0) extra.push(['Eta', o.eta]);
    return parametersText(o, o.sigmas ? 'custom' : o.schedule, this.config.family, extra);
  }

  protected async disposeModels(): Promise<void> {
    for (const t of this.#text) await t.encoder[Symbol.asyncDispose]();
    await this.#unet[Symbol.asyncDispose]();
    await this.#vae[Symbol.asyncDispose]();
  }
}
