// FLOP counts of the Stable Diffusion graphs, derived layer by layer from a ModelConfig the way
// the native graphs (native/models/unet*.cc, vae*.cc, clip_text.cc) run them. Counted: every
// multiply-add of a convolution, linear layer and attention matmul (QKᵀ and PV) as 2 FLOPs.
// Not counted: norms, activations, softmax, adds and copies (memory-bound, a few percent of the
// time and no FMA work) — so "fraction of FMA peak" compares like with like.
import type { ModelConfig, TextEncoderConfig, UNetConfig, VaeConfig } from '../../loading/types.js';

export type FlopKind = 'conv' | 'linear' | 'attention';

export interface FlopCount {
  total: number;
  byKind: Record<FlopKind, number>;
  /** per named layer (LDM module path), in graph order */
  layers: Array<{ name: string; kind: FlopKind; flops: number }>;
}

class Counter {
  readonly layers: FlopCount['layers'] = [];
  conv(name: string, cin: number, cout: number, k: number, ho: number, wo: number, batch: number): void {
    this.layers.push({ name, kind: 'conv', flops: 2 * batch * cout * cin * k * k * ho * wo });
  }
  linear(name: string, rows: number, inF: number, outF: number): void {
    this.layers.push({ name, kind: 'linear', flops: 2 * rows * inF * outF });
  }
  /** softmax(QKᵀ)V over all heads: width = heads · head_dim */
  attention(name: string, batch: number, nq: number, nk: number, width: number): void {
    this.layers.push({ name, kind: 'attention', flops: 2 * 2 * batch * nq * nk * width });
  }
  result(): FlopCount {
    const byKind: Record<FlopKind, number> = { conv: 0, linear: 0, attention: 0 };
    for (const l of this.layers) byKind[l.kind] += l.flops;
    return { total: byKind.conv + byKind.linear + byKind.attention, byKind, layers: this.layers };
  }
}

const ceilHalf = (n: number): number => Math.floor((n + 1) / 2); // 3×3 stride-2 pad-1 output size

/**
 * One U-Net evaluation on a [batch, C, latentH, latentW] sample with `contextTokens` text tokens
 * (77 per prompt window). SD1.5 at 64×64, batch 1: 0.80 TFLOP.
 */
export function unetFlops(c: UNetConfig, latentH: number, latentW: number, batch = 1, contextTokens = 77): FlopCount {
  const f = new Counter();
  const mc = c.modelChannels;
  const te = 4 * mc;
  const levels = c.channelMult.length;
  f.linear('time_embed.0', batch, mc, te);
  f.linear('time_embed.2', batch, te, te);

  const res = (p: string, cin: number, cout: number, h: number, w: number) => {
    f.conv(`${p}.in_layers.2`, cin, cout, 3, h, w, batch);
    f.linear(`${p}.emb_layers.1`, batch, te, cout);
    f.conv(`${p}.out_layers.3`, cout, cout, 3, h, w, batch);
    if (cin !== cout) f.conv(`${p}.skip_connection`, cin, cout, 1, h, w, batch);
  };
  const transformer = (p: string, ch: number, h: number, w: number) => {
    const n = h * w;
    const m = batch * n;
    f.linear(`${p}.proj_in`, m, ch, ch);
    for (let d = 0; d < c.transformerDepth; d++) {
      const b = `${p}.transformer_blocks.${d}`;
      f.linear(`${b}.attn1.to_qkv`, m, ch, 3 * ch);
      f.attention(`${b}.attn1`, batch, n, n, ch);
      f.linear(`${b}.attn1.to_out.0`, m, ch, ch);
      f.linear(`${b}.attn2.to_q`, m, ch, ch);
      f.linear(`${b}.attn2.to_kv`, batch * contextTokens, c.contextDim, 2 * ch);
      f.attention(`${b}.attn2`, batch, n, contextTokens, ch);
      f.linear(`${b}.attn2.to_out.0`, m, ch, ch);
      f.linear(`${b}.ff.net.0.proj`, m, ch, 8 * ch);
      f.linear(`${b}.ff.net.2`, m, 4 * ch, ch);
    }
    f.linear(`${p}.proj_out`, m, ch, ch);
  };

  let h = latentH;
  let w = latentW;
  f.conv('input_blocks.0.0', c.inChannels, mc, 3, h, w, batch);
  const skips: Array<{ ch: number; h: number; w: number }> = [{ ch: mc, h, w }];
  let ch = mc;
  let index = 1;
  for (let l = 0; l < levels; l++) {
    for (let r = 0; r < c.numResBlocks; r++, index++) {
      const out = c.channelMult[l] * mc;
      res(`input_blocks.${index}.0`, ch, out, h, w);
      ch = out;
      if (c.attentionLevels[l]) transformer(`input_blocks.${index}.1`, ch, h, w);
      skips.push({ ch, h, w });
    }
    if (l + 1 < levels) {
      h = ceilHalf(h);
      w = ceilHalf(w);
      f.conv(`input_blocks.${index}.0.op`, ch, ch, 3, h, w, batch);
      skips.push({ ch, h, w });
      index++;
    }
  }
  res('middle_block.0', ch, ch, h, w);
  transformer('middle_block.1', ch, h, w);
  res('middle_block.2', ch, ch, h, w);
  index = 0;
  for (let l = levels - 1; l >= 0; l--) {
    for (let r = 0; r <= c.numResBlocks; r++, index++) {
      const skip = skips.pop();
      if (!skip) throw new Error('U-Net FLOP count: skip stack underflow');
      const out = c.channelMult[l] * mc;
      res(`output_blocks.${index}.0`, ch + skip.ch, out, h, w);
      ch = out;
      let sub = 1;
      if (c.attentionLevels[l]) transformer(`output_blocks.${index}.${sub++}`, ch, h, w);
      if (l > 0 && r === c.numResBlocks) {
        const next = skips[skips.length - 1];
        h = next.h;
        w = next.w;
        f.conv(`output_blocks.${index}.${sub}.conv`, ch, ch, 3, h, w, batch);
      }
    }
  }
  f.conv('out.2', ch, c.outChannels, 3, h, w, batch);
  return f.result();
}

/** VAE decoder from a [batch, z, latentH, latentW] latent to pixels (×2^(levels-1)). SD1.5 to 512²: 2.51 TFLOP. */
export function vaeDecoderFlops(c: VaeConfig, latentH: number, latentW: number, batch = 1): FlopCount {
  const f = new Counter();
  const ch = c.channels;
  const levels = ch.length;
  let h = latentH;
  let w = latentW;
  const res = (p: string, cin: number, cout: number) => {
    f.conv(`${p}.conv1`, cin, cout, 3, h, w, batch);
    f.conv(`${p}.conv2`, cout, cout, 3, h, w, batch);
    if (cin !== cout) f.conv(`${p}.nin_shortcut`, cin, cout, 1, h, w, batch);
  };
  const z = c.latentChannels;
  let blockIn = ch[levels - 1];
  f.conv('post_quant_conv', z, z, 1, h, w, batch);
  f.conv('decoder.conv_in', z, blockIn, 3, h, w, batch);
  res('decoder.mid.block_1', blockIn, blockIn);
  const n = h * w;
  f.linear('decoder.mid.attn_1.qkv', batch * n, blockIn, 3 * blockIn);
  f.attention('decoder.mid.attn_1', batch, n, n, blockIn);
  f.linear('decoder.mid.attn_1.proj_out', batch * n, blockIn, blockIn);
  res('decoder.mid.block_2', blockIn, blockIn);
  for (let i = levels - 1; i >= 0; i--) {
    for (let j = 0; j <= c.numResBlocks; j++) {
      res(`decoder.up.${i}.block.${j}`, blockIn, ch[i]);
      blockIn = ch[i];
    }
    if (i !== 0) {
      h *= 2;
      w *= 2;
      f.conv(`decoder.up.${i}.upsample.conv`, blockIn, blockIn, 3, h, w, batch);
    }
  }
  f.conv('decoder.conv_out', blockIn, 3, 3, h, w, batch);
  return f.result();
}

/** Text encoder over `batch` windows of `tokens` tokens, `layers` layers run (causal attention: query i sees i+1 keys). */
export function textEncoderFlops(
  c: TextEncoderConfig,
  batch = 1,
  tokens = 77,
  layers = c.defaultLayersToRun,
): FlopCount {
  const f = new Counter();
  const m = batch * tokens;
  // Causal: Σ_i (i + 1) = T(T+1)/2 query-key pairs instead of T².
  const pairs = (tokens * (tokens + 1)) / 2;
  for (let l = 0; l < layers; l++) {
    const p = `layers.${l}`;
    f.linear(`${p}.qkv`, m, c.hidden, 3 * c.hidden);
    f.layers.push({ name: `${p}.attn`, kind: 'attention', flops: 2 * 2 * batch * pairs * c.hidden });
    f.linear(`${p}.out_proj`, m, c.hidden, c.hidden);
    f.linear(`${p}.fc1`, m, c.hidden, c.intermediate);
    f.linear(`${p}.fc2`, m, c.intermediate, c.hidden);
  }
  return f.result();
}

/** The per-step, decode and text FLOPs of one txt2img run at width × height (pixels). */
export function pipelineFlops(config: ModelConfig, width: number, height: number, cfg = true) {
  const f = 2 ** (config.vae.channels.length - 1);
  const lh = height / f;
  const lw = width / f;
  return {
    unetStep: unetFlops(config.unet, lh, lw, cfg ? 2 : 1).total,
    vaeDecode: vaeDecoderFlops(config.vae, lh, lw).total,
    textEncoder: textEncoderFlops(config.textEncoder, cfg ? 2 : 1).total,
  };
}
