// The contract between checkpoint detection (lib/loading) and the native model graphs.
// Detection turns a file or folder into a ModelConfig plus a WeightMap; the native
// graphs only ever see canonical (original LDM single-file) tensor names.

export type ModelFamily = 'sd1' | 'sd2' | 'sd2-v' | 'sdxl' | 'layered' | 'unknown';
export type PredictionType = 'epsilon' | 'v_prediction';
export type TensorDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface UNetConfig {
  inChannels: number; // 4
  outChannels: number; // 4
  modelChannels: number; // 320 for SD1/2
  channelMult: number[]; // [1, 2, 4, 4]
  numResBlocks: number; // 2
  /** per level: whether its blocks carry a SpatialTransformer */
  attentionLevels: boolean[];
  /** per level: attention heads (SD1: 8 everywhere; SD2: channels / 64) */
  numHeads: number[];
  /** heads in the middle block */
  midHeads: number;
  transformerDepth: number; // 1
  contextDim: number; // 768 SD1, 1024 SD2
  useLinearProjection: boolean; // SD2: true
  upcastAttention: boolean;
  normGroups: number; // 32
}

export interface VaeConfig {
  latentChannels: number; // 4
  channels: number[]; // [128, 256, 512, 512]
  numResBlocks: number; // 2
  scalingFactor: number; // 0.18215
  normGroups: number;
}

export interface TextEncoderConfig {
  /** 'clip' = HF CLIPTextModel names (SD1); 'openclip' = OpenCLIP resblocks (SD2) */
  kind: 'clip' | 'openclip';
  hidden: number;
  /** transformer layers present in the checkpoint */
  layers: number;
  heads: number;
  intermediate: number;
  vocabSize: number;
  maxPositions: number;
  activation: 'quick_gelu' | 'gelu';
  /** layers run by default (SD2 runs one less than it has: the penultimate layer) */
  defaultLayersToRun: number;
  /** token id used for padding (SD1 49407, SD2 0) */
  padToken: number;
}

export interface SchedulerConfig {
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'scaled_linear' | 'linear' | 'squaredcos_cap_v2';
  numTrainTimesteps: number;
  predictionType: PredictionType;
  timestepSpacing: 'leading' | 'trailing' | 'linspace';
  stepsOffset: number;
  setAlphaToOne: boolean;
  clipSample: boolean;
  /** the diffusers class named by scheduler_config.json, when known */
  className?: string;
}

/** Canonical tensor name -> where it lives. */
export interface WeightLocation {
  file: string;
  tensor: string;
  /**
   * Rows [start, end) along dimension 0 of `tensor`, when the canonical tensor is a slice of a
   * stored one (a contiguous byte range, so still a zero-copy view). Used for SD 2 single files:
   * OpenCLIP's fused `attn.in_proj_weight` [3C, C] / `in_proj_bias` [3C] hold q, k, v as row
   * blocks [0, C), [C, 2C), [2C, 3C). See lib/loading/keys.ts.
   */
  rows?: [number, number];
}
export type WeightMap = Record<string, WeightLocation>;

export interface ModelConfig {
  family: ModelFamily;
  /** native resolution in pixels (SD1 512, SD2-v 768) */
  nativeSize: number;
  unet: UNetConfig;
  vae: VaeConfig;
  textEncoder: TextEncoderConfig;
  scheduler: SchedulerConfig;
  /** dominant float dtype of the weights */
  dtype: TensorDType;
}
