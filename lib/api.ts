// The public shapes of the pipeline API (lib/pipeline.ts and lib/layered-pipeline.ts implement them).

import type { MemoryEstimate } from './estimate.js';
import type { GeneratedImage } from './image/image.js';
import type { ModelConfig, ModelFamily, PredictionType } from './loading/types.js';
import type { GenerateOptions } from './options.js';

export interface LoadOptions {
  /** worker threads for the native kernels; 0 or undefined = one per hardware thread */
  threads?: number;
  /** 'auto' uses CUDA when the addon was built with it and a GPU is present */
  device?: 'auto' | 'cpu' | 'cuda';
  /** overrides for what cannot be read from the weights (e.g. attention heads of non-standard widths) */
  config?: Partial<ModelConfig>;
  /** prediction type when a single file cannot tell (SD2 768-v files) */
  prediction?: PredictionType;
}

export interface PipelineInfo {
  family: ModelFamily;
  format: 'single-file' | 'diffusers' | 'layered';
  path: string;
  nativeWidth: number;
  nativeHeight: number;
  predictionType: PredictionType;
  dtype: string;
  /** parameters per component */
  parameters: { unet: number; vae: number; textEncoder: number };
  defaultSampler: string;
  defaultSteps: number;
  /** CFG weight used when a request names none: the model's own setting (7.5 for Stable Diffusion) */
  defaultGuidance: number;
  /** the samplers this model can run; the CLI, the service and its page offer only these */
  samplers: readonly string[];
  threads: number;
  device: 'cpu' | 'cuda';
}

export interface Timings {
  textMs: number;
  denoiseMs: number;
  decodeMs: number;
  totalMs: number;
  /** mean U-Net call time (both CFG halves batched) */
  perStepMs: number;
  /** resident set size high-water mark of the process after the run, bytes */
  peakRssBytes: number;
}

export interface GenerateResult {
  image: GeneratedImage;
  /** final latents [1, 4, H/8, W/8] (before VAE scaling) */
  latents: Float32Array;
  /** the seed used (random when none was given) */
  seed: number | bigint;
  timings: Timings;
  /** the A1111-style parameters string written into the PNG */
  parameters: string;
}

export interface EncodedPrompt {
  /** [1, 77·chunks, C] */
  embeddings: Float32Array;
  tokens: number;
  chunks: number;
}

export interface PipelineLike extends AsyncDisposable {
  readonly info: PipelineInfo;
  generate(options: GenerateOptions): Promise<GenerateResult>;
  /** memory a generate() with these options needs, without running it (weights shared, activations per request) */
  estimate?(options: GenerateOptions): MemoryEstimate;
  encodePrompt(prompt: string, options?: { clipSkip?: number; signal?: AbortSignal }): Promise<EncodedPrompt>;
  dispose(): Promise<void>;
}
