// Typed wrapper over the native `UNet` class (native/addon/unet_binding.cc).
import { callNative, DiffusionError, fromNative, invalid } from '../errors.js';
import type { UNetConfig, WeightMap } from '../loading/types.js';
import { loadBinding } from './load.js';
import { type NativeWeights, toNativeWeights } from './weights.js';

const UNET_PREFIX = 'model.diffusion_model.';

export interface UNetInputs {
  /** [B, inChannels, H, W] latents, H and W multiples of 8 */
  sample: Float32Array;
  sampleShape: [number, number, number, number];
  /** one timestep per batch element, or one for all (float timesteps allowed) */
  timesteps: Float64Array | number[] | number;
  /** [B, T, contextDim] text embeddings */
  context: Float32Array;
  contextShape: [number, number, number];
}

export interface UNetForwardOptions {
  /**
   * Attention-entropy scaling: the latent size the model was trained at (SD1.5: 64x64). When set,
   * each self-attention layer uses sqrt(ln N / ln T)/sqrt(d) as its softmax scale; unset = 1/sqrt(d).
   */
  nativeLatentSize?: { h: number; w: number };
  /** S-CFG: also return head-averaged attention probabilities at 1/4 and 1/8 of the latent side + middle */
  captureAttention?: boolean;
}

export interface CapturedAttention {
  /** LDM module path, e.g. "middle_block.1.transformer_blocks.0.attn2" */
  name: string;
  kind: 'self' | 'cross';
  h: number;
  w: number;
  /** [B, h*w, Nk]: softmax probabilities averaged over heads (Nk = h*w for self, T for cross) */
  probs: Float32Array;
}

export interface UNetOutputWithAttention {
  output: Float32Array;
  attention: CapturedAttention[];
}

interface NativeUNetHandle {
  forward(
    sample: Float32Array,
    shape: number[],
    timesteps: Float64Array | number[] | number,
    context: Float32Array,
    contextShape: number[],
    options?: { nativeLatentSize?: { h: number; w: number }; captureAttention?: boolean },
  ): Promise<Float32Array | UNetOutputWithAttention>;
  dispose(): void;
  stats(): { disposed: boolean; peakActivationBytes: number };
}
interface UNetBinding {
  UNet: new (weights: NativeWeights, config: UNetConfig, options: { threads: number }) => NativeUNetHandle;
  unetConfig(unet: unknown): UNetConfig;
}

export class NativeUNet {
  #handle: NativeUNetHandle | undefined;
  readonly config: UNetConfig;

  private constructor(handle: NativeUNetHandle, config: UNetConfig) {
    this.#handle = handle;
    this.config = config;
  }

  /** Maps the weights (zero copy) and checks every tensor's shape against the config. */
  static create(weights: WeightMap, config: UNetConfig, options: { threads?: number } = {}): NativeUNet {
    const threads = options.threads ?? 0;
    if (!Number.isInteger(threads) || threads < 0) invalid('a non-negative integer', 'threads', threads);
    const binding = loadBinding<UNetBinding>();
    const handle = callNative(() => new binding.UNet(toNativeWeights(weights, [UNET_PREFIX]), config, { threads }));
    return new NativeUNet(handle, config);
  }

  /** One U-Net evaluation, off the main thread; resolves to the [B, outChannels, H, W] output. */
  forward(inputs: UNetInputs, options?: UNetForwardOptions & { captureAttention?: false }): Promise<Float32Array>;
  forward(
    inputs: UNetInputs,
    options: UNetForwardOptions & { captureAttention: true },
  ): Promise<UNetOutputWithAttention>;
  async forward(inputs: UNetInputs, options: UNetForwardOptions = {}): Promise<Float32Array | UNetOutputWithAttention> {
    const handle = this.#handle;
    if (!handle) throw new DiffusionError('ERR_DISPOSED', 'This UNet was disposed');
    try {
      return await handle.forward(
        inputs.sample,
        inputs.sampleShape,
        inputs.timesteps,
        inputs.context,
        inputs.contextShape,
        options,
      );
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** The native object, for bindings that take a UNet (they recognise it by its N-API type tag). */
  get nativeHandle(): unknown {
    if (!this.#handle) throw new DiffusionError('ERR_DISPOSED', 'This UNet was disposed');
    return this.#handle;
  }

  /** The config as the native model holds it (round trip of the JS -> C++ conversion). */
  nativeConfig(): UNetConfig {
    const handle = this.#handle;
    return callNative(() => loadBinding<UNetBinding>().unetConfig(handle));
  }

  /** Peak activation memory of the last forward, in bytes. */
  get peakActivationBytes(): number {
    return this.#handle?.stats().peakActivationBytes ?? 0;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** Frees the native model; a forward already running finishes first, later calls reject with ERR_DISPOSED. */
  dispose(): void {
    this.#handle?.dispose();
    this.#handle = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}
