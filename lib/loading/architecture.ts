// The canonical tensor list of an SD 1.x / 2.x model, derived from its ModelConfig.
// One spec serves three purposes: detection checks a checkpoint against it (every tensor present
// with the expected shape), make-checkpoint writes exactly it, and tests compare it with the
// fixture files. Names are canonical (lib/loading/keys.ts): LDM single-file keys, with the
// SD 2 text encoder's q/k/v split (`attn.q_proj.weight` ...) instead of OpenCLIP's fused in_proj.

import { CLIP_PREFIX, OPENCLIP_PREFIX, UNET_PREFIX, VAE_PREFIX } from './keys.js';
import type { ModelConfig, TextEncoderConfig, UNetConfig, VaeConfig } from './types.js';

export type Component = 'unet' | 'vae' | 'textEncoder';

export interface TensorSpec {
  name: string;
  shape: number[];
  component: Component;
  /** how make-checkpoint initialises it */
  init: 'weight' | 'bias' | 'norm' | 'embedding';
  /** fan-in used for the weight scale */
  fanIn?: number;
}

type Emit = (name: string, shape: number[], init: TensorSpec['init'], fanIn?: number) => void;

function emitter(out: TensorSpec[], prefix: string, component: Component): Emit {
  return (name, shape, init, fanIn) => out.push({ name: prefix + name, shape, component, init, fanIn });
}

function linear(e: Emit, name: string, outF: number, inF: number, bias = true): void {
  e(`${name}.weight`, [outF, inF], 'weight', inF);
  if (bias) e(`${name}.bias`, [outF], 'bias');
}

function conv(e: Emit, name: string, outC: number, inC: number, k: number): void {
  e(`${name}.weight`, [outC, inC, k, k], 'weight', inC * k * k);
  e(`${name}.bias`, [outC], 'bias');
}

function norm(e: Emit, name: string, c: number): void {
  e(`${name}.weight`, [c], 'norm');
  e(`${name}.bias`, [c], 'bias');
}

// ---------------------------------------------------------------- U-Net (LDM openaimodel names)

function unetResBlock(e: Emit, p: string, cin: number, cout: number, temb: number): void {
  norm(e, `${p}.in_layers.0`, cin);
  conv(e, `${p}.in_layers.2`, cout, cin, 3);
  linear(e, `${p}.emb_layers.1`, cout, temb);
  norm(e, `${p}.out_layers.0`, cout);
  conv(e, `${p}.out_layers.3`, cout, cout, 3);
  if (cin !== cout) conv(e, `${p}.skip_connection`, cout, cin, 1);
}

function unetTransformer(e: Emit, p: string, c: number, u: UNetConfig): void {
  norm(e, `${p}.norm`, c);
  const proj = (name: string) => (u.useLinearProjection ? linear(e, name, c, c) : conv(e, name, c, c, 1));
  proj(`${p}.proj_in`);
  for (let d = 0; d < u.transformerDepth; d++) {
    const b = `${p}.transformer_blocks.${d}`;
    for (const [attn, kv] of [
      ['attn1', c],
      ['attn2', u.contextDim],
    ] as const) {
      linear(e, `${b}.${attn}.to_q`, c, c, false);
      linear(e, `${b}.${attn}.to_k`, c, kv, false);
      linear(e, `${b}.${attn}.to_v`, c, kv, false);
      linear(e, `${b}.${attn}.to_out.0`, c, c);
    }
    linear(e, `${b}.ff.net.0.proj`, 8 * c, c); // GEGLU: value and gate halves
    linear(e, `${b}.ff.net.2`, c, 4 * c);
    for (const n of ['norm1', 'norm2', 'norm3']) norm(e, `${b}.${n}`, c);
  }
  proj(`${p}.proj_out`);
}

export function unetSpec(u: UNetConfig): TensorSpec[] {
  const out: TensorSpec[] = [];
  const e = emitter(out, UNET_PREFIX, 'unet');
  const mc = u.modelChannels;
  const temb = 4 * mc;
  const levels = u.channelMult.length;
  linear(e, 'time_embed.0', temb, mc);
  linear(e, 'time_embed.2', temb, temb);
  conv(e, 'input_blocks.0.0', mc, u.inChannels, 3);
  const skips = [mc];
  let ch = mc;
  let idx = 1;
  for (let i = 0; i < levels; i++) {
    const width = mc * u.channelMult[i];
    for (let j = 0; j < u.numResBlocks; j++, idx++) {
      unetResBlock(e, `input_blocks.${idx}.0`, ch, width, temb);
      if (u.attentionLevels[i]) unetTransformer(e, `input_blocks.${idx}.1`, width, u);
      ch = width;
      skips.push(ch);
    }
    if (i < levels - 1) {
      conv(e, `input_blocks.${idx}.0.op`, ch, ch, 3);
      skips.push(ch);
      idx++;
    }
  }
  unetResBlock(e, 'middle_block.0', ch, ch, temb);
  unetTransformer(e, 'middle_block.1', ch, u);
  unetResBlock(e, 'middle_block.2', ch, ch, temb);
  idx = 0;
  for (let i = levels - 1; i >= 0; i--) {
    const width = mc * u.channelMult[i];
    for (let j = 0; j <= u.numResBlocks; j++, idx++) {
      const skip = skips.pop() as number;
      unetResBlock(e, `output_blocks.${idx}.0`, ch + skip, width, temb);
      ch = width;
      let sub = 1;
      if (u.attentionLevels[i]) unetTransformer(e, `output_blocks.${idx}.${sub++}`, width, u);
      if (i > 0 && j === u.numResBlocks) conv(e, `output_blocks.${idx}.${sub}.conv`, ch, ch, 3);
    }
  }
  norm(e, 'out.0', ch);
  conv(e, 'out.2', u.outChannels, ch, 3);
  return out;
}

// ---------------------------------------------------------------- VAE (LDM autoencoder names)

function vaeResBlock(e: Emit, p: string, cin: number, cout: number): void {
  norm(e, `${p}.norm1`, cin);
  conv(e, `${p}.conv1`, cout, cin, 3);
  norm(e, `${p}.norm2`, cout);
  conv(e, `${p}.conv2`, cout, cout, 3);
  if (cin !== cout) conv(e, `${p}.nin_shortcut`, cout, cin, 1);
}

function vaeMid(e: Emit, p: string, c: number): void {
  vaeResBlock(e, `${p}.block_1`, c, c);
  norm(e, `${p}.attn_1.norm`, c);
  // LDM stores the attention projections as 1x1 convolutions [C, C, 1, 1] (diffusers: Linear [C, C]).
  for (const n of ['q', 'k', 'v', 'proj_out']) conv(e, `${p}.attn_1.${n}`, c, c, 1);
  vaeResBlock(e, `${p}.block_2`, c, c);
}

export function vaeSpec(v: VaeConfig): TensorSpec[] {
  const out: TensorSpec[] = [];
  const e = emitter(out, VAE_PREFIX, 'vae');
  const ch = v.channels;
  const levels = ch.length;
  const top = ch[levels - 1];
  conv(e, 'encoder.conv_in', ch[0], 3, 3);
  let cin = ch[0];
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < v.numResBlocks; j++) {
      vaeResBlock(e, `encoder.down.${i}.block.${j}`, cin, ch[i]);
      cin = ch[i];
    }
    if (i < levels - 1) conv(e, `encoder.down.${i}.downsample.conv`, ch[i], ch[i], 3);
  }
  vaeMid(e, 'encoder.mid', top);
  norm(e, 'encoder.norm_out', top);
  conv(e, 'encoder.conv_out', 2 * v.latentChannels, top, 3);
  conv(e, 'quant_conv', 2 * v.latentChannels, 2 * v.latentChannels, 1);
  conv(e, 'post_quant_conv', v.latentChannels, v.latentChannels, 1);
  conv(e, 'decoder.conv_in', top, v.latentChannels, 3);
  vaeMid(e, 'decoder.mid', top);
  cin = top;
  for (let i = levels - 1; i >= 0; i--) {
    for (let j = 0; j <= v.numResBlocks; j++) {
      vaeResBlock(e, `decoder.up.${i}.block.${j}`, cin, ch[i]);
      cin = ch[i];
    }
    if (i > 0) conv(e, `decoder.up.${i}.upsample.conv`, ch[i], ch[i], 3);
  }
  norm(e, 'decoder.norm_out', ch[0]);
  conv(e, 'decoder.conv_out', 3, ch[0], 3);
  return out;
}

// ---------------------------------------------------------------- text encoders

export function textEncoderSpec(t: TextEncoderConfig): TensorSpec[] {
  const out: TensorSpec[] = [];
  const h = t.hidden;
  const im = t.intermediate;
  if (t.kind === 'clip') {
    const e = emitter(out, `${CLIP_PREFIX}text_model.`, 'textEncoder');
    e('embeddings.token_embedding.weight', [t.vocabSize, h], 'embedding');
    e('embeddings.position_embedding.weight', [t.maxPositions, h], 'embedding');
    for (let l = 0; l < t.layers; l++) {
      const p = `encoder.layers.${l}`;
      norm(e, `${p}.layer_norm1`, h);
      for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(e, `${p}.self_attn.${n}`, h, h);
      norm(e, `${p}.layer_norm2`, h);
      linear(e, `${p}.mlp.fc1`, im, h);
      linear(e, `${p}.mlp.fc2`, h, im);
    }
    norm(e, 'final_layer_norm', h);
  } else {
    const e = emitter(out, OPENCLIP_PREFIX, 'textEncoder');
    e('token_embedding.weight', [t.vocabSize, h], 'embedding');
    e('positional_embedding', [t.maxPositions, h], 'embedding');
    for (let l = 0; l < t.layers; l++) {
      const p = `transformer.resblocks.${l}`;
      norm(e, `${p}.ln_1`, h);
      // canonical split of OpenCLIP's fused attn.in_proj_{weight,bias} (see keys.ts)
      for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(e, `${p}.attn.${n}`, h, h);
      norm(e, `${p}.ln_2`, h);
      linear(e, `${p}.mlp.c_fc`, im, h);
      linear(e, `${p}.mlp.c_proj`, h, im);
    }
    norm(e, 'ln_final', h);
  }
  return out;
}

/** Every canonical tensor of the model, U-Net, VAE, text encoder in that order. */
export function modelSpec(config: Pick<ModelConfig, 'unet' | 'vae' | 'textEncoder'>): TensorSpec[] {
  return [...unetSpec(config.unet), ...vaeSpec(config.vae), ...textEncoderSpec(config.textEncoder)];
}
