// S-CFG layer selection for the Stable Diffusion U-Net: which captured attention maps S-CFG reads and how they
// pair up (the layered model's counterpart is layeredScfgLayers in layered.ts). The native U-Net captures the
// blocks at 1/4 and 1/8 of the latent side plus the middle block (UNetForwardOptions.captureAttention).
import { invalid } from '../errors.js';
import type { CapturedAttention } from '../native/unet.js';
import type { ScfgLayerAttention } from './scfg.js';

/**
 * Groups the SD U-Net's captured attention by transformer block for S-CFG (scfg.ts): one entry per
 * block with its self- and cross-attention maps split into the batch halves [uncond, cond]
 * (views, no copies). Needs a batch of 2 run with `captureAttention: true`.
 */
export function scfgLayers(attention: CapturedAttention[]): ScfgLayerAttention[] {
  const byBlock = new Map<string, { self?: CapturedAttention; cross?: CapturedAttention }>();
  for (const a of attention) {
    const block = a.name.replace(/\.attn[12]$/, '');
    const entry = byBlock.get(block) ?? {};
    entry[a.kind] = a;
    byBlock.set(block, entry);
  }
  const layers: ScfgLayerAttention[] = [];
  for (const [block, { self, cross }] of byBlock) {
    if (!self || !cross)
      invalid('both attn1 and attn2', `captured attention of ${block}`, self ? 'attn1 only' : 'attn2 only');
    const hw = self.h * self.w;
    if (self.probs.length !== 2 * hw * hw) invalid(`batch 2 (${2 * hw * hw} values)`, `${block}.attn1`, self.probs);
    const crossHalf = cross.probs.length / 2;
    layers.push({
      height: self.h,
      width: self.w,
      selfUncond: self.probs.subarray(0, hw * hw),
      selfCond: self.probs.subarray(hw * hw),
      crossUncond: cross.probs.subarray(0, crossHalf),
      crossCond: cross.probs.subarray(crossHalf),
    });
  }
  return layers;
}
