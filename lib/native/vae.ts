// Typed wrapper over the native VAE (native/addon/vae_binding.cc).
import { callNative, fromNative, invalid } from '../errors.js';
import type { VaeConfig } from '../loading/types.js';
import { withCancel } from './cancel.js';
import { loadBinding } from './load.js';
import type { ModelThreadOptions } from './text-encoder.js';
import type { NativeWeights } from './weights.js';

export type Shape4 = [number, number, number, number];

export interface VaeTileOptions {
  /** latent pixels per tile side (default 64) */
  size?: number;
  /** latent pixels shared by neighbouring tiles, blended with linear ramps (default min(16, size / 4)) */
  overlap?: number;
}

export interface VaeDecodeOptions {
  /**
   * Decode in overlapping tiles (bounded memory for large images). Group-norm statistics are computed per
   * tile, so the result approximates the untiled decode; latents that fit in one tile decode exactly.
   */
  tile?: boolean | VaeTileOptions;
  /** Stops the decode between decoder blocks and tiles (rejects with ERR_ABORTED). */
  signal?: AbortSignal;
}

/** Moments of the latent distribution, each [B, latentChannels, H/f, W/f]; logvar clamped to [-30, 20]. */
export interface LatentMoments {
  mean: Float32Array;
  logvar: Float32Array;
}

interface NativeVae {
  decode(
    latents: Float32Array,
    shape: Shape4,
    options: { tile?: boolean | VaeTileOptions; cancel?: Int32Array },
  ): Promise<Float32Array>;
  encode(image: Float32Array, shape: Shape4, options?: { cancel?: Int32Array }): Promise<LatentMoments>;
  dispose(): void;
  readonly disposed: boolean;
  readonly hasEncoder: boolean;
  readonly factor: number;
}

interface VaeBinding {
  VAE: new (weights: NativeWeights, config: VaeConfig, options: ModelThreadOptions) => NativeVae;
}

/** The LDM autoencoder over canonical `first_stage_model.*` weights. */
export class Vae {
  readonly config: VaeConfig;
  readonly #native: NativeVae;

  constructor(weights: NativeWeights, config: VaeConfig, options: ModelThreadOptions = {}) {
    this.config = { ...config, channels: [...config.channels] };
    const binding = loadBinding<VaeBinding>();
    this.#native = callNative(() => new binding.VAE(weights, this.config, { threads: options.threads }));
  }

  /** image pixels per latent pixel (8 for SD) */
  get factor(): number {
    return this.#native.factor;
  }
  get hasEncoder(): boolean {
    return this.#native.hasEncoder;
  }
  get disposed(): boolean {
    return this.#native.disposed;
  }

  /**
   * latents [B, latentChannels, h, w], already divided by the scaling factor -> raw decoder output
   * [B, 3, f·h, f·w] (about [-1, 1], unclamped).
   */
  async decode(latents: Float32Array, shape: Shape4, options: VaeDecodeOptions = {}): Promise<Float32Array> {
    const { signal, ...native } = options;
    return withCancel(signal, async (cancel) => {
      try {
        return await this.#native.decode(latents, shape, cancel ? { ...native, cancel } : native);
      } catch (err) {
        throw fromNative(err);
      }
    });
  }

  /** image [B, 3, H, W] in [-1, 1] (H, W multiples of `factor`) -> moments of the latent distribution. */
  async encode(image: Float32Array, shape: Shape4, options: { signal?: AbortSignal } = {}): Promise<LatentMoments> {
    return withCancel(options.signal, async (cancel) => {
      try {
        return await this.#native.encode(image, shape, cancel ? { cancel } : undefined);
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

/**
 * A latent sample as img2img starts from: (mean + exp(logvar / 2) · noise) · scalingFactor, with `noise`
 * standard normal values of the same length (diffusers' latent_dist.sample(generator) * scaling_factor).
 */
export function sampleLatents(moments: LatentMoments, noise: Float32Array, scalingFactor: number): Float32Array {
  const { mean, logvar } = moments;
  if (noise.length !== mean.length) invalid(`${mean.length} noise values`, 'noise', noise);
  const out = new Float32Array(mean.length);
  for (let i = 0; i < mean.length; i++) {
    out[i] = (mean[i] + Math.fround(Math.exp(0.5 * logvar[i])) * noise[i]) * scalingFactor;
  }
  return out;
}
