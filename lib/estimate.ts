// Memory a generation needs, before it runs: the weights (shared by every request to a loaded model)
// and the activations of one request (its size, batch and guidance mode). The native side reports the
// U-Net's measured activation peak after a forward (NativeUNet.peakActivationBytes) but has no planning
// pass that sizes a graph before running it, so these figures are derived from the shapes, following the
// buffers the native code allocates (skip maps, ping-pong maps, transformer scratch, VAE decoder maps).
// test/estimate.test.ts checks the U-Net figure against the measured peak.

import type { UNetConfig, VaeConfig } from './loading/types.js';
import type { LayeredModelConfig as LayeredConfig } from './native/layered.js';

export interface MemoryEstimate {
  /** the model's weights as loaded (shared: counted once per model, not per request) */
  weightsBytes: number;
  /** what one request adds while it runs */
  activationBytes: number;
  /** weightsBytes + activationBytes */
  totalBytes: number;
  /** activationBytes by stage (they do not overlap in time: the largest one counts) */
  stages: Record<string, number>;
  /** how the figure was obtained */
  method: 'shapes';
}

const F32 = 4;

/**
 * The SD U-Net's arena peak for a batch of `batch` latents h×w (CFG batches both halves: batch 2).
 * Live at once: every skip map of the down path, two ping-pong maps of the widest concatenation, and the
 * scratch of the busiest SpatialTransformer (norm, tokens, qkv, hidden, feed-forward 12·C per token).
 */
export function unetActivationBytes(u: UNetConfig, batch: number, h: number, w: number): number {
  const levels = u.channelMult.length;
  let skips = u.modelChannels * h * w; // conv_in output
  let widest = 0;
  let transformer = 0;
  for (let l = 0; l < levels; l++) {
    const c = u.modelChannels * u.channelMult[l];
    const px = Math.ceil(h / 2 ** l) * Math.ceil(w / 2 ** l);
    skips += (u.numResBlocks + (l < levels - 1 ? 1 : 0)) * c * px;
    widest = Math.max(widest, 2 * c * px);
    if (u.attentionLevels[l]) transformer = Math.max(transformer, 18 * c * px);
  }
  const deepest = u.modelChannels * u.channelMult[levels - 1];
  const midPx = Math.ceil(h / 2 ** (levels - 1)) * Math.ceil(w / 2 ** (levels - 1));
  transformer = Math.max(transformer, 18 * deepest * midPx);
  return F32 * batch * (skips + 2 * widest + transformer);
}

/**
 * The VAE decoder's peak for a latent h×w: three maps of the widest level (input, output, norm) at that
 * level's resolution, plus the decoded image. Tiled decoding bounds the maps to one tile (64 latent
 * pixels a side, the default of lib/native/vae.ts) while the output image stays full size.
 */
export function vaeDecodeBytes(v: VaeConfig, h: number, w: number, tiled: boolean): number {
  const th = tiled ? Math.min(h, 64) : h;
  const tw = tiled ? Math.min(w, 64) : w;
  const levels = v.channels.length;
  let maps = 0;
  for (let l = 0; l < levels; l++) {
    // the decoder runs the widest channels at the lowest resolution and channels[0] at full resolution
    const scale = 2 ** (levels - 1 - l);
    const px = th * 8 * ((tw * 8) / (scale * scale));
    maps = Math.max(maps, 3 * v.channels[l] * px);
  }
  const image = 3 * h * 8 * w * 8;
  return F32 * (maps + image) + image; // float output + 8-bit RGB
}

/**
 * The layered pixel-space model: 1.5 maps of its widest channel count at every scale of an H×W image per
 * batch element, plus a fixed 64 MiB (text encoder, scratch). Coarser than the U-Net's: the factor comes
 * from the embedded model's measured peak RSS growth (256²: 112 MiB, 512²: 277 MiB, 1024²: 1000 MiB,
 * guided), which this covers by 1.4–1.6×.
 */
export function layeredActivationBytes(cfg: LayeredConfig, batch: number, height: number, width: number): number {
  const widest = Math.max(...cfg.scale_channels, ...cfg.inner_channels);
  const native = cfg.scales[cfg.scales.length - 1];
  let px = 0;
  for (const s of cfg.scales) px += Math.ceil((height * s) / native) * Math.ceil((width * s) / native);
  return F32 * batch * 1.5 * widest * px + 64 * 2 ** 20;
}

export function bytesPerParameter(dtype: string): number {
  return /16/.test(dtype) ? 2 : 4;
}

export function memoryEstimate(weightsBytes: number, stages: Record<string, number>): MemoryEstimate {
  const activationBytes = Math.max(0, ...Object.values(stages));
  return { weightsBytes, activationBytes, totalBytes: weightsBytes + activationBytes, stages, method: 'shapes' };
}
