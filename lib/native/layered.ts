// Typed wrapper over the native LayeredUNet (native/addon/layered_binding.cc): our layered pixel-space model,
// a U-Net at every scale plus a tiny CLIP text encoder (docs/design.md §5.2). Folders are opened by
// loadLayeredModel in lib/loading/layered.ts.
import { DiffusionError, invalid } from '../errors.js';
import { loadBinding } from './load.js';
import type { NativeWeights } from './weights.js';

/** config.json of a layered model (snake_case as written by training/export.py). */
export interface LayeredModelConfig {
  format: 'native-diffusion-layered';
  scales: number[];
  in_channels: number;
  scale_channels: number[];
  inner_channels: [number, number];
  head_dim: number;
  groups: number;
  time_embed_dim: number;
  time_freq_dim: number;
  context_dim: number;
  prediction_type: 'v';
  loss_weights: number[];
  schedule: { type: 'shifted-cosine'; base_size: number; logsnr_min: number; logsnr_max: number };
  text: { vocab_size: number; width: number; layers: number; heads: number; max_positions: number; mlp_ratio: number };
  /** CLIP ids of token_embedding rows 1.. (row 0 stands for every other id) */
  vocab: number[];
  weights?: string;
  training_steps?: number;
  /** recommended sampler settings (DDIM over the shared t) */
  sampler?: { type: 'ddim'; steps: number; guidance: number };
}

export interface LayeredForwardArgs {
  /** inputs at every scale, lowest first: [batch, C, H·s_i/top, W·s_i/top] */
  z: Float32Array[];
  batch: number;
  height: number;
  width: number;
  /** shared time per batch item, in [0, 1] */
  t: Float32Array;
  /** [batch, contextTokens, context_dim] */
  context: Float32Array;
  contextTokens: number;
  /** softmax scales of the 3 self-attention layers (entropy scaling); default 1/√head_dim */
  selfAttentionScales?: Float32Array;
}

/** Head-averaged attention probabilities of one layer (S-CFG), from forward(…, { captureAttention: true }). */
export interface LayeredAttention {
  /** module path, e.g. "middle_block.1.transformer_blocks.0.attn2" */
  name: string;
  kind: 'self' | 'cross';
  h: number;
  w: number;
  /** [batch, h·w, Nk] (Nk = h·w for self, contextTokens for cross) */
  probs: Float32Array;
}

export interface LayeredOutputWithAttention {
  /** v at every scale, lowest first */
  outputs: Float32Array[];
  attention: LayeredAttention[];
}

interface NativeLayeredUNet {
  encodeText(ids: Int32Array, batch: number): Promise<Float32Array>;
  forward(
    args: LayeredForwardArgs & { captureAttention?: boolean },
  ): Promise<Float32Array[] | LayeredOutputWithAttention>;
  dispose(): void;
}

interface LayeredBinding {
  LayeredUNet: new (weights: NativeWeights, configJson: string, options: { threads?: number }) => NativeLayeredUNet;
}

/** What LayeredModel needs of a CLIP BPE tokenizer (lib/tokenizer/clip-bpe.ts's ClipTokenizer; passed in by the
 * loader so this wrapper does not depend on the tokenizer layer). */
export interface LayeredTokenizer {
  readonly endTokenId: number;
  encode(text: string, options: { maxLength: number }): { inputIds: readonly number[] };
}

export class LayeredModel {
  private native: NativeLayeredUNet | undefined;

  constructor(
    readonly config: LayeredModelConfig,
    native: NativeLayeredUNet,
    private readonly tokenizer: LayeredTokenizer,
  ) {
    this.native = native;
  }

  /**
   * Opens the native LayeredUNet over mapped weights. `configJson` is the folder's config.json text (the native
   * side parses it again); use loadLayeredModel (lib/loading/layered.ts) to open a folder.
   */
  static create(
    weights: NativeWeights,
    config: LayeredModelConfig,
    configJson: string,
    tokenizer: LayeredTokenizer,
    options: { threads?: number } = {},
  ): LayeredModel {
    const binding = loadBinding<LayeredBinding>();
    const native = new binding.LayeredUNet(weights, configJson, { threads: options.threads ?? 0 });
    return new LayeredModel(config, native, tokenizer);
  }

  private live(): NativeLayeredUNet {
    if (!this.native) throw new DiffusionError('ERR_DISPOSED', 'The layered model was disposed');
    return this.native;
  }

  /**
   * CLIP ids [batch, 77] of prompts: start, BPE ids, end, padded with end (SD1 style). Ids outside the model's
   * vocabulary are dropped (its "unknown" row was never trained), so "a photorealistic red apple" reads as
   * "a red apple".
   */
  tokenize(prompts: string[]): Int32Array {
    const n = this.config.text.max_positions;
    const known = new Set(this.config.vocab);
    const end = this.tokenizer.endTokenId;
    const out = new Int32Array(prompts.length * n).fill(end);
    prompts.forEach((p, i) => {
      const ids = this.tokenizer.encode(p, { maxLength: n }).inputIds.filter((id) => known.has(id) && id !== end);
      out.set(ids.slice(0, n - 1), i * n); // start + known words; the end token and padding follow
    });
    return out;
  }

  /** Context [prompts.length, 77, context_dim] for the U-Net's cross-attention. */
  async encodePrompts(prompts: string[]): Promise<Float32Array> {
    if (prompts.length === 0) invalid('at least one prompt', 'prompts', prompts);
    return this.live().encodeText(this.tokenize(prompts), prompts.length);
  }

  async encodeIds(ids: Int32Array, batch: number): Promise<Float32Array> {
    return this.live().encodeText(ids, batch);
  }

  /** v at every scale, lowest first (validation errors reject the promise). */
  async forward(args: LayeredForwardArgs): Promise<Float32Array[]> {
    return (await this.live().forward({ ...args, captureAttention: false })) as Float32Array[];
  }

  /** forward() plus the head-averaged self- and cross-attention probabilities of the 3 transformer blocks. */
  async forwardWithAttention(args: LayeredForwardArgs): Promise<LayeredOutputWithAttention> {
    return (await this.live().forward({ ...args, captureAttention: true })) as LayeredOutputWithAttention;
  }

  dispose(): void {
    this.native?.dispose();
    this.native = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}
