// A diffusers folder (model_index.json + unet/, vae/, text_encoder/, tokenizer/, scheduler/) read
// into a canonical tensor table plus its component configs.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionError } from '../errors.js';
import type { TensorTable } from './derive.js';
import { diffusersUNetKey, diffusersVaeKey, hfTextEncoderKey } from './keys.js';
import { readSafetensorsHeader, type TensorInfo } from './safetensors.js';

export interface DiffusersFolder {
  table: TensorTable;
  stored: Array<{ file: string; tensor: string }>;
  files: string[];
  unet: Record<string, any>;
  vae: Record<string, any>;
  textEncoder: Record<string, any>;
  scheduler?: Record<string, any>;
  textKind: 'clip' | 'openclip';
  /** pad token id from tokenizer/, when the folder has one */
  padToken?: number;
  /** tensors of component files that map to no canonical name */
  unmapped: string[];
}

export function readJson(path: string): Record<string, any> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DiffusionError('ERR_IO', `Could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (err) {
    throw new DiffusionError(
      'ERR_INVALID_FILE',
      `Expected a JSON object in ${path} but it does not parse: ${(err as Error).message}`,
    );
  }
}

/** The tensors of one component: a .safetensors file, a variant, or a sharded index. */
function componentTensors(
  dir: string,
  base: string,
  variant: string | undefined,
): Array<{ file: string; info: TensorInfo }> {
  const names = [variant && `${base}.${variant}.safetensors`, `${base}.safetensors`, `${base}.fp16.safetensors`].filter(
    Boolean,
  ) as string[];
  for (const name of names) {
    const file = join(dir, name);
    if (existsSync(file)) return readSafetensorsHeader(file).tensors.map((info) => ({ file, info }));
  }
  for (const name of [variant && `${base}.safetensors.index.${variant}.json`, `${base}.safetensors.index.json`].filter(
    Boolean,
  ) as string[]) {
    const index = join(dir, name);
    if (!existsSync(index)) continue;
    const map = readJson(index).weight_map as Record<string, string> | undefined;
    if (!map || typeof map !== 'object')
      throw new DiffusionError('ERR_INVALID_FILE', `Expected a weight_map object in ${index}`);
    const out: Array<{ file: string; info: TensorInfo }> = [];
    for (const shard of new Set(Object.values(map))) {
      const file = join(dir, shard);
      for (const info of readSafetensorsHeader(file).tensors) out.push({ file, info });
    }
    return out;
  }
  const present = existsSync(dir) ? readdirSync(dir).join(', ') : 'nothing (no such folder)';
  const pickle = present.includes('.bin')
    ? ' Pickle (.bin) weights are never loaded: convert them to .safetensors.'
    : '';
  throw new DiffusionError('ERR_UNSUPPORTED', `Expected ${base}.safetensors in ${dir} but found ${present}.${pickle}`);
}

function padTokenId(folder: string): number | undefined {
  const dir = join(folder, 'tokenizer');
  const cfgPath = join(dir, 'tokenizer_config.json');
  const mapPath = join(dir, 'special_tokens_map.json');
  let pad: unknown;
  for (const p of [mapPath, cfgPath]) if (pad === undefined && existsSync(p)) pad = readJson(p).pad_token;
  if (pad && typeof pad === 'object') pad = (pad as { content?: unknown }).content;
  if (typeof pad !== 'string') return undefined;
  if (existsSync(cfgPath)) {
    const added = readJson(cfgPath).added_tokens_decoder as Record<string, { content?: string }> | undefined;
    for (const [id, tok] of Object.entries(added ?? {})) if (tok?.content === pad) return Number(id);
  }
  const vocabPath = join(dir, 'vocab.json');
  if (existsSync(vocabPath)) {
    const id = readJson(vocabPath)[pad];
    if (typeof id === 'number') return id;
  }
  return undefined;
}

export function readDiffusersFolder(folder: string, variant?: string): DiffusersFolder {
  const unet = readJson(join(folder, 'unet', 'config.json'));
  const vae = readJson(join(folder, 'vae', 'config.json'));
  const textEncoder = readJson(join(folder, 'text_encoder', 'config.json'));
  const schedPath = join(folder, 'scheduler', 'scheduler_config.json');
  const scheduler = existsSync(schedPath) ? readJson(schedPath) : undefined;
  const padToken = padTokenId(folder);
  // SD 2's OpenCLIP-converted text encoder uses gelu; SD 1's OpenAI CLIP quick_gelu.
  const textKind: 'clip' | 'openclip' =
    textEncoder.hidden_act === 'gelu' || (textEncoder.hidden_act === undefined && padToken === 0) ? 'openclip' : 'clip';

  const table: TensorTable = new Map();
  const stored: Array<{ file: string; tensor: string }> = [];
  const files = new Set<string>();
  const unmapped: string[] = [];
  const add = (entries: Array<{ file: string; info: TensorInfo }>, map: (key: string) => string | null) => {
    for (const { file, info } of entries) {
      files.add(file);
      stored.push({ file, tensor: info.name });
      const canonical = map(info.name);
      if (canonical === null) unmapped.push(info.name);
      else table.set(canonical, { file, tensor: info.name, dtype: info.dtype, shape: info.shape });
    }
  };

  const unetTensors = componentTensors(join(folder, 'unet'), 'diffusion_pytorch_model', variant);
  const unetNames = new Set(unetTensors.map((t) => t.info.name));
  const countIndices = (re: RegExp) =>
    new Set([...unetNames].map((n) => re.exec(n)?.[1]).filter((x) => x !== undefined)).size;
  const numResBlocks = countIndices(/^down_blocks\.0\.resnets\.(\d+)\./);
  const upLevels = countIndices(/^up_blocks\.(\d+)\./);
  const upHasAttention = Array.from({ length: upLevels }, (_, i) =>
    [...unetNames].some((n) => n.startsWith(`up_blocks.${i}.attentions.`)),
  );
  add(unetTensors, (k) => diffusersUNetKey(k, { numResBlocks, upHasAttention }));

  const vaeTensors = componentTensors(join(folder, 'vae'), 'diffusion_pytorch_model', variant);
  const vaeLevels = new Set(
    vaeTensors.map((t) => /^decoder\.up_blocks\.(\d+)\./.exec(t.info.name)?.[1]).filter((x) => x !== undefined),
  ).size;
  add(vaeTensors, (k) => diffusersVaeKey(k, vaeLevels));

  add(componentTensors(join(folder, 'text_encoder'), 'model', variant), (k) => hfTextEncoderKey(k, textKind));

  return { table, stored, files: [...files], unet, vae, textEncoder, scheduler, textKind, padToken, unmapped };
}
