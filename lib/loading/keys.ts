// Canonical tensor names and the diffusers -> canonical mapping.
//
// CANONICAL NAMES (what the native graphs look up) = the original LDM single-file keys:
//   U-Net         model.diffusion_model.{time_embed,input_blocks,middle_block,output_blocks,out}.*
//   VAE           first_stage_model.{encoder,decoder,quant_conv,post_quant_conv}.*
//                 mid attention q/k/v/proj_out: LDM stores [C, C, 1, 1], diffusers Linear [C, C];
//                 same data, so a diffusers tensor maps as is and graphs must accept either shape
//                 (WeightStore::get(name, shape) compares element counts).
//   SD1 text      cond_stage_model.transformer.text_model.* (HF CLIPTextModel names; a diffusers
//                 text_encoder/ key `text_model.X` is canonical `cond_stage_model.transformer.text_model.X`).
//   SD2 text      cond_stage_model.model.* with OpenCLIP names, EXCEPT the fused attention input:
//                 OpenCLIP stores `transformer.resblocks.N.attn.in_proj_weight` [3C, C] and
//                 `in_proj_bias` [3C] (rows: q, then k, then v), diffusers stores q/k/v separately.
//                 A fused tensor cannot be a view of three files' tensors, but each split part IS a
//                 contiguous row range of the fused one, so the canonical names are the split ones:
//                   cond_stage_model.model.transformer.resblocks.N.attn.q_proj.weight [C, C]  bias [C]
//                   cond_stage_model.model.transformer.resblocks.N.attn.k_proj.weight [C, C]  bias [C]
//                   cond_stage_model.model.transformer.resblocks.N.attn.v_proj.weight [C, C]  bias [C]
//                 In a single file they resolve to in_proj_weight / in_proj_bias with
//                 WeightLocation.rows = [0, C), [C, 2C), [2C, 3C); in a diffusers folder to
//                 text_model.encoder.layers.N.self_attn.{q,k,v}_proj.*. No canonical `in_proj_*` exists.
//                 The other SD2 names: token_embedding.weight, positional_embedding,
//                 transformer.resblocks.N.{ln_1,ln_2,attn.out_proj,mlp.c_fc,mlp.c_proj}.*, ln_final.*
//                 (diffusers: embeddings.token_embedding.weight, embeddings.position_embedding.weight,
//                 layer_norm1, layer_norm2, self_attn.out_proj, mlp.fc1, mlp.fc2, final_layer_norm).
//                 SD2 single files carry one resblock more than SD2 uses; diffusers folders drop it.
//
// The U-Net/VAE index arithmetic follows diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py,
// generalised from its hard-coded 4 levels x 2 layers to the layout read from the checkpoint.

export const UNET_PREFIX = 'model.diffusion_model.';
export const VAE_PREFIX = 'first_stage_model.';
export const CLIP_PREFIX = 'cond_stage_model.transformer.';
export const OPENCLIP_PREFIX = 'cond_stage_model.model.';

export interface UNetKeyLayout {
  /** resnets per down level (diffusers layers_per_block); up levels have one more */
  numResBlocks: number;
  /** per diffusers up level (0 = lowest resolution): whether it holds attentions */
  upHasAttention: boolean[];
}

const UNET_TOP: Record<string, string> = {
  'time_embedding.linear_1': 'time_embed.0',
  'time_embedding.linear_2': 'time_embed.2',
  conv_in: 'input_blocks.0.0',
  conv_norm_out: 'out.0',
  conv_out: 'out.2',
};

const UNET_RESNET: Record<string, string> = {
  norm1: 'in_layers.0',
  conv1: 'in_layers.2',
  norm2: 'out_layers.0',
  conv2: 'out_layers.3',
  time_emb_proj: 'emb_layers.1',
  conv_shortcut: 'skip_connection',
};

function mapResnetTail(tail: string, table: Record<string, string>): string | null {
  const dot = tail.lastIndexOf('.');
  const head = tail.slice(0, dot);
  const mapped = table[head];
  return mapped === undefined ? null : `${mapped}${tail.slice(dot)}`;
}

/** A diffusers unet/ tensor name -> canonical name, or null when it is not part of the layout. */
export function diffusersUNetKey(key: string, layout: UNetKeyLayout): string | null {
  const n = layout.numResBlocks;
  const dot = key.lastIndexOf('.');
  const top = UNET_TOP[key.slice(0, dot)];
  if (top !== undefined) return UNET_PREFIX + top + key.slice(dot);
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const idx = 1 + Number(m[1]) * (n + 1) + Number(m[3]);
    if (Number(m[3]) >= n) return null;
    if (m[2] === 'attentions') return `${UNET_PREFIX}input_blocks.${idx}.1.${m[4]}`;
    const tail = mapResnetTail(m[4], UNET_RESNET);
    return tail && `${UNET_PREFIX}input_blocks.${idx}.0.${tail}`;
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(key);
  if (m) return `${UNET_PREFIX}input_blocks.${(Number(m[1]) + 1) * (n + 1)}.0.op.${m[2]}`;
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    if (Number(m[3]) > n) return null;
    const idx = Number(m[1]) * (n + 1) + Number(m[3]);
    if (m[2] === 'attentions') return `${UNET_PREFIX}output_blocks.${idx}.1.${m[4]}`;
    const tail = mapResnetTail(m[4], UNET_RESNET);
    return tail && `${UNET_PREFIX}output_blocks.${idx}.0.${tail}`;
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(key);
  if (m) {
    const level = Number(m[1]);
    const sub = layout.upHasAttention[level] ? 2 : 1;
    return `${UNET_PREFIX}output_blocks.${level * (n + 1) + n}.${sub}.conv.${m[2]}`;
  }
  m = /^mid_block\.attentions\.0\.(.+)$/.exec(key);
  if (m) return `${UNET_PREFIX}middle_block.1.${m[1]}`;
  m = /^mid_block\.resnets\.(\d)\.(.+)$/.exec(key);
  if (m && Number(m[1]) < 2) {
    const tail = mapResnetTail(m[2], UNET_RESNET);
    return tail && `${UNET_PREFIX}middle_block.${2 * Number(m[1])}.${tail}`;
  }
  return null;
}

const VAE_RESNET: Record<string, string> = {
  norm1: 'norm1',
  conv1: 'conv1',
  norm2: 'norm2',
  conv2: 'conv2',
  conv_shortcut: 'nin_shortcut',
};

// diffusers >= 0.15 names first, the older attention names after them.
const VAE_ATTENTION: Record<string, string> = {
  group_norm: 'norm',
  to_q: 'q',
  to_k: 'k',
  to_v: 'v',
  'to_out.0': 'proj_out',
  query: 'q',
  key: 'k',
  value: 'v',
  proj_attn: 'proj_out',
};

/** A diffusers vae/ tensor name -> canonical name (levels = len(block_out_channels)), or null. */
export function diffusersVaeKey(key: string, levels: number): string | null {
  let m = /^(encoder|decoder)\.conv_norm_out\.(weight|bias)$/.exec(key);
  if (m) return `${VAE_PREFIX}${m[1]}.norm_out.${m[2]}`;
  m = /^((?:encoder|decoder)\.conv_(?:in|out)|quant_conv|post_quant_conv)\.(weight|bias)$/.exec(key);
  if (m) return VAE_PREFIX + key;
  m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const tail = mapResnetTail(m[3], VAE_RESNET);
    return tail && `${VAE_PREFIX}encoder.down.${m[1]}.block.${m[2]}.${tail}`;
  }
  m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(key);
  if (m) return `${VAE_PREFIX}encoder.down.${m[1]}.downsample.conv.${m[2]}`;
  m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const tail = mapResnetTail(m[3], VAE_RESNET);
    return tail && `${VAE_PREFIX}decoder.up.${levels - 1 - Number(m[1])}.block.${m[2]}.${tail}`;
  }
  m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(key);
  if (m) return `${VAE_PREFIX}decoder.up.${levels - 1 - Number(m[1])}.upsample.conv.${m[2]}`;
  m = /^(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)$/.exec(key);
  if (m && Number(m[2]) < 2) {
    const tail = mapResnetTail(m[3], VAE_RESNET);
    return tail && `${VAE_PREFIX}${m[1]}.mid.block_${Number(m[2]) + 1}.${tail}`;
  }
  m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)$/.exec(key);
  if (m) {
    const mapped = VAE_ATTENTION[m[2]];
    return mapped === undefined ? null : `${VAE_PREFIX}${m[1]}.mid.attn_1.${mapped}.${m[3]}`;
  }
  return null;
}

const OPENCLIP_LAYER: Record<string, string> = {
  layer_norm1: 'ln_1',
  layer_norm2: 'ln_2',
  'self_attn.q_proj': 'attn.q_proj',
  'self_attn.k_proj': 'attn.k_proj',
  'self_attn.v_proj': 'attn.v_proj',
  'self_attn.out_proj': 'attn.out_proj',
  'mlp.fc1': 'mlp.c_fc',
  'mlp.fc2': 'mlp.c_proj',
};

/**
 * A diffusers text_encoder/ (HF CLIPTextModel) tensor name -> canonical name, or null.
 * kind 'clip' (SD1) keeps the HF names under cond_stage_model.transformer.; 'openclip' (SD2)
 * renames to the OpenCLIP scheme above.
 */
export function hfTextEncoderKey(key: string, kind: 'clip' | 'openclip'): string | null {
  if (!key.startsWith('text_model.')) return null;
  if (kind === 'clip') return key.endsWith('.position_ids') ? null : CLIP_PREFIX + key;
  const rest = key.slice('text_model.'.length);
  if (rest === 'embeddings.token_embedding.weight') return `${OPENCLIP_PREFIX}token_embedding.weight`;
  if (rest === 'embeddings.position_embedding.weight') return `${OPENCLIP_PREFIX}positional_embedding`;
  let m = /^final_layer_norm\.(weight|bias)$/.exec(rest);
  if (m) return `${OPENCLIP_PREFIX}ln_final.${m[1]}`;
  m = /^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(rest);
  if (m) {
    const mapped = OPENCLIP_LAYER[m[2]];
    return mapped === undefined ? null : `${OPENCLIP_PREFIX}transformer.resblocks.${m[1]}.${mapped}.${m[3]}`;
  }
  return null;
}

/**
 * For an SD2 single file: the stored tensor and row range holding a canonical split q/k/v name,
 * e.g. `...resblocks.3.attn.k_proj.weight` -> { tensor: `...resblocks.3.attn.in_proj_weight`, rows: [C, 2C] }.
 * Null for names that are stored as they are.
 */
export function openClipFusedSource(
  canonical: string,
  hidden: number,
): { tensor: string; rows: [number, number] } | null {
  const m = /^(.*\.attn)\.([qkv])_proj\.(weight|bias)$/.exec(canonical);
  if (!m || !canonical.startsWith(OPENCLIP_PREFIX)) return null;
  const part = 'qkv'.indexOf(m[2]);
  return { tensor: `${m[1]}.in_proj_${m[3]}`, rows: [part * hidden, (part + 1) * hidden] };
}
