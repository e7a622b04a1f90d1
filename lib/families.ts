// Model families as data: what a Stable Diffusion-style pipeline needs to know about a family beyond what detection
// reads from the weights — its text encoders (tokenizer, encoder, which hidden state, pooled output), whether the
// U-Net takes added conditioning, and its default sampler. lib/pipeline.ts runs any description here; a new family
// (SDXL: two encoders, pooled text embeds and size/crop time ids) is a new entry, not a new pipeline file
// (docs/architecture.md, "Add a model family").
import type { ModelConfig, ModelFamily, TextEncoderConfig } from './loading/types.js';
import { type SamplerName, samplerForDiffusersClass } from './samplers/index.js';
import type { ClipTokenizerOptions } from './tokenizer/clip-bpe.js';

/** Which hidden state of a text encoder feeds cross-attention (before clip skip, which drops further layers). */
export interface HiddenStateChoice {
  /** transformer layers to run */
  layersToRun: number;
  /** apply the final layer norm to that layer's output (SD1/SD2: yes; SDXL's penultimate states: no) */
  finalLayerNorm: boolean;
}

export interface TextEncoderSpec {
  /** canonical weight prefix of this encoder (SD1/SD2 single files: 'cond_stage_model.') */
  prefix: string;
  /** the native encoder: 'clip' runs HF CLIP and OpenCLIP weights alike (lib/native/text-encoder.ts) */
  encoder: 'clip';
  /** this encoder's detected configuration */
  config(model: ModelConfig): TextEncoderConfig;
  /** the CLIP BPE tokenizer's options for it (the pad token differs between CLIP and OpenCLIP) */
  tokenizer(config: TextEncoderConfig): ClipTokenizerOptions;
  hiddenState(config: TextEncoderConfig): HiddenStateChoice;
  /**
   * 'projected': this encoder's pooled, projected end-token state becomes part of the added conditioning (SDXL's
   * text_embeds from its second encoder). Undefined: no pooled output is used.
   */
  pooled?: 'projected';
}

/**
 * Extra inputs of the U-Net's label embedding (`label_emb`, SDXL's "text_time" conditioning): the pooled text
 * embedding followed by sinusoidal embeddings of the size/crop ids [original h, original w, crop top, crop left,
 * target h, target w].
 */
export interface AddedConditioningSpec {
  kind: 'text-time';
  /** sinusoidal embedding width per time id (SDXL: 256) */
  timeIdDim: number;
}

export interface FamilySpec {
  /** the detected families this description runs */
  families: readonly ModelFamily[];
  /** in order: their hidden states are concatenated along channels into the cross-attention context */
  textEncoders: readonly TextEncoderSpec[];
  addedConditioning?: AddedConditioningSpec;
  /** the sampler when generate() names none: the model's own scheduler class, else this */
  fallbackSampler(model: ModelConfig): SamplerName;
  defaultSteps: number;
}

/** The CLIP BPE tokenizer pads SD1 prompts with the end token and SD2 (OpenCLIP, pad id 0) with '!'. */
export function clipTokenizerOptions(config: TextEncoderConfig): ClipTokenizerOptions {
  return { padToken: config.padToken === 0 ? '!' : '<|endoftext|>' };
}

/** SD 1.x (CLIP ViT-L/14, last layer) and SD 2.x (OpenCLIP ViT-H/14, penultimate layer, as the checkpoint says). */
const STABLE_DIFFUSION: FamilySpec = {
  families: ['sd1', 'sd2', 'sd2-v'],
  textEncoders: [
    {
      prefix: 'cond_stage_model.',
      encoder: 'clip',
      config: (model) => model.textEncoder,
      tokenizer: clipTokenizerOptions,
      // the checkpoint's own depth (SD2 files run 23 of 24 layers), then the final layer norm
      hiddenState: (c) => ({ layersToRun: c.defaultLayersToRun, finalLayerNorm: true }),
    },
  ],
  fallbackSampler: (model) => (model.family === 'sd1' ? 'pndm' : 'ddim'),
  defaultSteps: 25,
};

export const FAMILIES: readonly FamilySpec[] = [STABLE_DIFFUSION];

/** The description that runs a detected family; undefined when none does (SDXL, unknown). */
export function familySpec(family: ModelFamily): FamilySpec | undefined {
  return FAMILIES.find((f) => f.families.includes(family));
}

/** The sampler generate() uses by default: the checkpoint's scheduler class when it is one of ours. */
export function defaultSamplerFor(spec: FamilySpec, model: ModelConfig): SamplerName {
  return samplerForDiffusersClass(model.scheduler.className) ?? spec.fallbackSampler(model);
}
