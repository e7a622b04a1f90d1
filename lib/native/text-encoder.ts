// Typed wrapper over the native CLIP text encoder (native/addon/clip_binding.cc).
import { callNative, fromNative, invalid } from '../errors.js';
import type { TextEncoderConfig } from '../loading/types.js';
import { withCancel } from './cancel.js';
import { loadBinding } from './load.js';
import type { NativeWeights } from './weights.js';

export interface ModelThreadOptions {
  /** worker threads for this model's kernels; 0 or absent = one per hardware thread */
  threads?: number;
}

export interface TextEncodeOptions {
  /** transformer layers to run (0..config.layers); default config.defaultLayersToRun */
  layersToRun?: number;
  /** diffusers' clip_skip: run defaultLayersToRun - clipSkip layers (the final layer norm still applies) */
  clipSkip?: number;
  /** apply the final layer norm after the last layer run (default true, as SD1/SD2 pipelines do) */
  finalLayerNorm?: boolean;
  /** stops the encoding between layers (rejects with ERR_ABORTED) */
  signal?: AbortSignal;
}

interface NativeTextEncoder {
  encode(
    ids: Int32Array,
    batch: number,
    options: { layersToRun?: number; finalLayerNorm?: boolean; cancel?: Int32Array },
  ): Promise<Float32Array>;
  dispose(): void;
  readonly disposed: boolean;
}

interface ClipBinding {
  TextEncoder: new (
    weights: NativeWeights,
    config: TextEncoderConfig,
    options: ModelThreadOptions,
  ) => NativeTextEncoder;
}

/** SD1 (HF CLIP names) or SD2 (OpenCLIP names) text encoder over canonical `cond_stage_model.*` weights. */
export class ClipTextEncoder {
  readonly config: TextEncoderConfig;
  readonly #native: NativeTextEncoder;

  constructor(weights: NativeWeights, config: TextEncoderConfig, options: ModelThreadOptions = {}) {
    this.config = { ...config };
    const binding = loadBinding<ClipBinding>();
    this.#native = callNative(() => new binding.TextEncoder(weights, this.config, { threads: options.threads }));
  }

  get disposed(): boolean {
    return this.#native.disposed;
  }

  /**
   * ids: token ids [batch, maxPositions] (one row per 77-token window; long prompts are more rows).
   * Returns the hidden states [batch, maxPositions, hidden].
   */
  async encode(ids: Int32Array | ArrayLike<number>, options: TextEncodeOptions = {}): Promise<Float32Array> {
    const T = this.config.maxPositions;
    let data: Int32Array;
    if (ids instanceof Int32Array) {
      data = ids;
    } else {
      // checked here: Int32Array.from would silently truncate fractions and wrap large values
      const vocab = this.config.vocabSize;
      data = new Int32Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        if (!Number.isInteger(id) || id < 0 || id >= vocab) invalid(`token ids in [0, ${vocab})`, `ids[${i}]`, id);
        data[i] = id;
      }
    }
    if (data.length === 0 || data.length % T !== 0) invalid(`a multiple of ${T} token ids`, 'ids', ids);
    let layersToRun = options.layersToRun;
    if (options.clipSkip !== undefined) {
      if (layersToRun !== undefined) invalid('either layersToRun or clipSkip, not both', 'options', options);
      const skip = options.clipSkip;
      if (!Number.isInteger(skip) || skip < 0 || skip > this.config.defaultLayersToRun) {
        invalid(`an integer in [0, ${this.config.defaultLayersToRun}]`, 'options.clipSkip', skip);
      }
      layersToRun = this.config.defaultLayersToRun - skip;
    }
    const run = { layersToRun, finalLayerNorm: options.finalLayerNorm };
    return withCancel(options.signal, async (cancel) => {
      try {
        return await this.#native.encode(data, data.length / T, cancel ? { ...run, cancel } : run);
      } catch (err) {
        throw fromNative(err);
      }
    });
  }

  /** Releases the weights; later calls reject with ERR_DISPOSED. Calls already running finish first. */
  dispose(): void {
    this.#native.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}
