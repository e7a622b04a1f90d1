export type {
  EncodedPrompt,
  GenerateResult,
  LoadOptions,
  PipelineInfo,
  PipelineLike,
  Timings,
} from './api.js';
export type { ErrorCode } from './errors.js';
export { DiffusionError } from './errors.js';
export type { MemoryEstimate } from './estimate.js';
export type { LayeredGuidanceSettings } from './guidance/layered.js';
export { layeredGuidance } from './guidance/layered.js';
export { GeneratedImage } from './image/image.js';
export { readPNGText } from './image/png.js';
export { defaultModelDir, isLayeredModelDir, LayeredPipeline, loadLayeredPipeline } from './layered-pipeline.js';
export { loadPipeline } from './load-pipeline.js';
export type { DetectedModel, DetectOptions } from './loading/detect.js';
export { detectModel, identifyModel } from './loading/detect.js';
export { inspectModel } from './loading/inspect.js';
export { loadLayeredModel } from './loading/layered.js';
export type { ModelConfig, ModelFamily, PredictionType } from './loading/types.js';
export type {
  LayeredAttention,
  LayeredForwardArgs,
  LayeredModel,
  LayeredModelConfig,
  LayeredOutputWithAttention,
} from './native/layered.js';
export type { BuildInfo } from './native/load.js';
export { buildInfo } from './native/load.js';
export { TorchGenerator, torchRandn } from './noise/torch-rng.js';
export type {
  AttentionScaling,
  GenerateOptions,
  GuidanceMethod,
  GuidanceOptions,
  GuidanceSchedule,
  ProgressEvent,
  SamplerName,
  ScheduleName,
} from './options.js';
export { Pipeline } from './pipeline.js';
export type { Sampler } from './samplers/index.js';
export { createSampler, listSamplers } from './samplers/index.js';
export type {
  LayeredCombined,
  LayeredGuidance,
  LayeredProgress,
  LayeredSampleOptions,
  LayeredStep,
} from './samplers/layered.js';
export { sampleLayered } from './samplers/layered.js';
export type { LayeredGenerateOptions, LayeredImage } from './samplers/layered-generate.js';
export { generateLayered } from './samplers/layered-generate.js';
export { ClipTokenizer } from './tokenizer/clip-bpe.js';
