// Checkpoint detection: a single LDM-layout .safetensors file or a diffusers folder -> ModelConfig
// + WeightMap (canonical names, lib/loading/keys.ts). Structure comes from tensor shapes; what
// shapes cannot tell (heads, prediction type, native size, scheduler) comes from the folder's
// configs, the file's metadata, the caller's overrides or the family's convention, and
// DetectedModel.sources records which.
//
// Rules for single files (no configs):
// - heads: SD1 8 at every level; SD2 width/64 (rounded up, so narrowed test models need an override).
// - prediction: options.prediction > metadata (`modelspec.prediction_type` 'v'/'epsilon', or
//   `prediction_type`) > a sibling `<name>.yaml` with `parameterization: "v"` > SD2 whose file name
//   contains "768" or "v-pred"/"vpred" -> v_prediction > epsilon.
// - native size: metadata `modelspec.resolution` "WxH" > SD1 512, SD2 768 when v_prediction else 512.
// - scheduler: the family's standard one (sd15Scheduler / sd2Scheduler).
// - metadata key `native_diffusion.config` may hold a JSON partial ModelConfig (make-checkpoint
//   writes it for narrowed models); options.config is applied last and wins.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { DiffusionError } from '../errors.js';
import type { Component } from './architecture.js';
import {
  type DeepPartial,
  headDim64,
  mergeConfig,
  overridePaths,
  schedulerFromDiffusers,
  sd1Heads,
  sd2Scheduler,
  sd15Scheduler,
} from './defaults.js';
import {
  type ComponentSummary,
  dominantDType,
  resolveWeights,
  summarize,
  type TensorTable,
  textFromShapes,
  unetFromShapes,
  vaeFromShapes,
} from './derive.js';
import { readDiffusersFolder, readJson } from './diffusers-folder.js';
import { CLIP_PREFIX, OPENCLIP_PREFIX, openClipFusedSource, UNET_PREFIX, VAE_PREFIX } from './keys.js';
import { readSafetensorsHeader } from './safetensors.js';
import type { ModelConfig, ModelFamily, PredictionType, SchedulerConfig, WeightMap } from './types.js';

export type { DeepPartial } from './defaults.js';
export type { ComponentSummary } from './derive.js';

export type ModelFormat = 'single-file' | 'diffusers';

export interface DetectOptions {
  /** values that win over everything detected (deep merge; arrays replace) */
  config?: DeepPartial<ModelConfig>;
  /** shorthand for config.scheduler.predictionType (also sets the sd2 / sd2-v family) */
  prediction?: PredictionType;
  /** diffusers weight variant, e.g. 'fp16' (diffusion_pytorch_model.fp16.safetensors) */
  variant?: string;
}

export interface DetectedModel {
  path: string;
  format: ModelFormat;
  config: ModelConfig;
  weights: WeightMap;
  components: Record<Component, ComponentSummary>;
  /** the weight files (one for a single file) */
  files: string[];
  /** stored tensors no canonical name uses (DDPM buffers, position_ids, SD2's text_projection ...) */
  unusedTensors: string[];
  /** where the values shapes cannot give came from: field -> 'config' | 'metadata' | 'override' | 'filename' | 'yaml' | 'default' */
  sources: Record<string, string>;
}

export interface IdentifiedModel {
  path: string;
  format: ModelFormat | 'layered';
  family: ModelFamily;
  /** the layered model's config.json */
  layered?: Record<string, unknown>;
}

const LAYERED_FORMAT = 'native-diffusion-layered';

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err) {
    throw new DiffusionError('ERR_IO', `Could not open ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Top-level key groups with counts, for error messages. */
function prefixSummary(names: string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) {
    const parts = n.split('.');
    const deep = ['model', 'cond_stage_model', 'conditioner', 'text_model'].includes(parts[0]) && parts.length > 2;
    const key = deep ? `${parts[0]}.${parts[1]}.*` : parts.length > 1 ? `${parts[0]}.*` : parts[0];
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return (
    [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([k, n]) => `${k} (${n})`)
      .join(', ') || 'no tensors'
  );
}

function familyOfKeys(names: string[]): ModelFamily {
  const has = (p: string) => names.some((n) => n.startsWith(p));
  if (has('conditioner.embedders.')) return 'sdxl';
  if (!has(UNET_PREFIX) || !has(VAE_PREFIX)) return 'unknown';
  if (has(OPENCLIP_PREFIX)) return 'sd2';
  if (has(CLIP_PREFIX)) return 'sd1';
  return 'unknown';
}

function unsupportedLayout(path: string, names: string[]): DiffusionError {
  const looksDiffusers = names.some((n) => /^(down_blocks|mid_block|text_model|encoder\.down_blocks)\./.test(n));
  const hint = looksDiffusers
    ? ' This looks like one component of a diffusers folder: pass the folder that holds model_index.json.'
    : '';
  return new DiffusionError(
    'ERR_UNSUPPORTED',
    `Unrecognised checkpoint layout in ${path}: expected model.diffusion_model.* + first_stage_model.* with cond_stage_model.transformer.* (SD 1.x) or cond_stage_model.model.* (SD 2.x). Found: ${prefixSummary(names)}.${hint}`,
  );
}

/** A folder's model_index.json / config.json stands for the folder. */
function folderOfConfig(path: string): string {
  return ['model_index.json', 'config.json'].includes(basename(path)) ? dirname(path) : path;
}

function refusePickle(path: string): void {
  if (['.ckpt', '.pt', '.pth', '.bin'].includes(extname(path).toLowerCase()))
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `${path} is a pickle checkpoint; pickles are never executed. Convert it to .safetensors first.`,
    );
}

/** Family and format only (cheap; recognises layouts detectModel cannot run yet). */
export function identifyModel(path: string): IdentifiedModel {
  path = folderOfConfig(path);
  if (isDir(path)) {
    if (existsSync(join(path, 'model_index.json'))) {
      const te = join(path, 'text_encoder', 'config.json');
      const index = readJson(join(path, 'model_index.json'));
      if (index.text_encoder_2) return { path, format: 'diffusers', family: 'sdxl' };
      const act = existsSync(te) ? readJson(te).hidden_act : undefined;
      return { path, format: 'diffusers', family: act === 'gelu' ? 'sd2' : 'sd1' };
    }
    const cfgPath = join(path, 'config.json');
    if (existsSync(cfgPath)) {
      const cfg = readJson(cfgPath);
      if (cfg.format === LAYERED_FORMAT) return { path, format: 'layered', family: 'layered', layered: cfg };
    }
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `Expected model_index.json (diffusers) or config.json with "format": "${LAYERED_FORMAT}" in the folder ${path} but found neither`,
    );
  }
  refusePickle(path);
  const names = readSafetensorsHeader(path).tensors.map((t) => t.name);
  return { path, format: 'single-file', family: familyOfKeys(names) };
}

interface Facts {
  heads?: number[];
  midHeads?: number;
  textHeads?: number;
  prediction?: PredictionType;
  nativeSize?: number;
  scheduler?: SchedulerConfig;
  upcastAttention?: boolean;
  normGroups?: number;
  vaeNormGroups?: number;
  scalingFactor?: number;
  activation?: 'quick_gelu' | 'gelu';
  layersToRun?: number;
  padToken?: number;
  /** source for every fact above that is set */
  source: string;
}

/** Builds the config from shapes + facts; family conventions fill what facts leave open. */
function buildConfig(
  table: TensorTable,
  textKind: 'clip' | 'openclip',
  facts: Facts,
  where: string,
  sources: Record<string, string>,
): ModelConfig {
  const u = unetFromShapes(table, where);
  const v = vaeFromShapes(table, where);
  const t = textFromShapes(table, textKind, where);
  const sd2 = textKind === 'openclip';
  const widths = u.channelMult.map((m) => m * u.modelChannels);
  const note = (field: string, given: unknown) => {
    sources[field] = given !== undefined ? facts.source : 'default';
  };
  note('unet.numHeads', facts.heads);
  note('unet.midHeads', facts.midHeads);
  note('textEncoder.heads', facts.textHeads);
  note('scheduler.predictionType', facts.prediction);
  note('nativeSize', facts.nativeSize);
  note('scheduler', facts.scheduler);
  const prediction = facts.prediction ?? 'epsilon';
  const scheduler = {
    ...(facts.scheduler ?? (sd2 ? sd2Scheduler(prediction) : sd15Scheduler())),
    predictionType: prediction,
  };
  return {
    family: sd2 ? (prediction === 'v_prediction' ? 'sd2-v' : 'sd2') : 'sd1',
    nativeSize: facts.nativeSize ?? (sd2 && prediction === 'v_prediction' ? 768 : 512),
    unet: {
      ...u,
      numHeads: facts.heads ?? (sd2 ? widths.map(headDim64) : sd1Heads(widths)),
      midHeads: facts.midHeads ?? (sd2 ? headDim64(widths[widths.length - 1]) : 8),
      upcastAttention: facts.upcastAttention ?? (sd2 && prediction === 'v_prediction'),
      normGroups: facts.normGroups ?? 32,
    },
    vae: { ...v, scalingFactor: facts.scalingFactor ?? 0.18215, normGroups: facts.vaeNormGroups ?? 32 },
    textEncoder: {
      ...t,
      heads: facts.textHeads ?? headDim64(t.hidden),
      activation: facts.activation ?? (sd2 ? 'gelu' : 'quick_gelu'),
      defaultLayersToRun: facts.layersToRun ?? t.layers,
      padToken: facts.padToken ?? (sd2 ? 0 : 49407),
    },
    scheduler,
    dtype: 'F32',
  };
}

function singleFileFacts(
  path: string,
  metadata: Record<string, string>,
  textKind: 'clip' | 'openclip',
  layers: number,
): { facts: Facts; predictionSource?: string; metaConfig?: DeepPartial<ModelConfig> } {
  const facts: Facts = { source: 'metadata' };
  let predictionSource: string | undefined;
  const metaPred = metadata['modelspec.prediction_type'] ?? metadata.prediction_type;
  if (metaPred !== undefined) {
    facts.prediction = /^v/.test(metaPred) ? 'v_prediction' : 'epsilon';
    predictionSource = 'metadata';
  } else {
    const yaml = join(dirname(path), `${basename(path, extname(path))}.yaml`);
    if (existsSync(yaml)) {
      facts.prediction = /^\s*parameterization:\s*["']?v["']?\s*$/m.test(readFileSync(yaml, 'utf8'))
        ? 'v_prediction'
        : 'epsilon';
      predictionSource = 'yaml';
    } else if (textKind === 'openclip' && /768|v[-_]?pred/i.test(basename(path))) {
      facts.prediction = 'v_prediction';
      predictionSource = 'filename';
    }
  }
  const res = /^(\d+)x(\d+)$/.exec(metadata['modelspec.resolution'] ?? '');
  if (res) facts.nativeSize = Math.max(Number(res[1]), Number(res[2]));
  // OpenCLIP single files carry one block more than SD 2 runs (it uses the penultimate layer).
  facts.layersToRun = textKind === 'openclip' ? layers - 1 : layers;
  let metaConfig: DeepPartial<ModelConfig> | undefined;
  if (metadata['native_diffusion.config']) {
    try {
      metaConfig = JSON.parse(metadata['native_diffusion.config']);
    } catch (err) {
      throw new DiffusionError(
        'ERR_INVALID_FILE',
        `Expected JSON in the native_diffusion.config metadata of ${path}: ${(err as Error).message}`,
      );
    }
  }
  return { facts, predictionSource, metaConfig };
}

function detectSingleFile(path: string): {
  table: TensorTable;
  stored: Array<{ file: string; tensor: string }>;
  textKind: 'clip' | 'openclip';
  metadata: Record<string, string>;
} {
  refusePickle(path);
  const header = readSafetensorsHeader(path);
  const names = header.tensors.map((t) => t.name);
  const family = familyOfKeys(names);
  if (family === 'sdxl')
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `${path} is an SDXL checkpoint (conditioner.embedders.*); SDXL is detected but not supported yet`,
    );
  if (family !== 'sd1' && family !== 'sd2') throw unsupportedLayout(path, names);
  const textKind = family === 'sd2' ? 'openclip' : 'clip';
  // Old SD1 files store the HF text model without the `text_model.` level.
  const oldClip =
    !names.includes(`${CLIP_PREFIX}text_model.embeddings.token_embedding.weight`) &&
    names.includes(`${CLIP_PREFIX}embeddings.token_embedding.weight`);
  const table: TensorTable = new Map();
  for (const t of header.tensors) {
    const entry = { file: path, tensor: t.name, dtype: t.dtype, shape: t.shape };
    if (t.name.startsWith(UNET_PREFIX) || t.name.startsWith(VAE_PREFIX) || t.name.startsWith(OPENCLIP_PREFIX))
      table.set(t.name, entry);
    else if (t.name.startsWith(CLIP_PREFIX))
      table.set(oldClip ? `${CLIP_PREFIX}text_model.${t.name.slice(CLIP_PREFIX.length)}` : t.name, entry);
    const fused = /^(.*\.attn)\.in_proj_(weight|bias)$/.exec(t.name);
    if (fused && t.name.startsWith(OPENCLIP_PREFIX)) {
      const c = t.name.endsWith('weight') ? t.shape[1] : t.shape[0] / 3;
      for (const part of ['q', 'k', 'v']) {
        const canonical = `${fused[1]}.${part}_proj.${fused[2]}`;
        const src = openClipFusedSource(canonical, c) as { tensor: string; rows: [number, number] };
        table.set(canonical, { ...entry, rows: src.rows });
      }
      table.delete(t.name);
    }
  }
  return {
    table,
    stored: header.tensors.map((t) => ({ file: path, tensor: t.name })),
    textKind,
    metadata: header.metadata,
  };
}

/** Reads a single .safetensors file or a diffusers folder; throws DiffusionError for anything it cannot run. */
export function detectModel(path: string, options: DetectOptions = {}): DetectedModel {
  path = folderOfConfig(path);
  const sources: Record<string, string> = {};
  let config: ModelConfig;
  let table: TensorTable;
  let stored: Array<{ file: string; tensor: string }>;
  let files: string[];
  let format: ModelFormat;
  let metaConfig: DeepPartial<ModelConfig> | undefined;

  if (isDir(path)) {
    const id = identifyModel(path);
    if (id.format === 'layered')
      throw new DiffusionError(
        'ERR_UNSUPPORTED',
        `${path} is a native-diffusion layered model: load it with loadPipeline(), which runs it as a LayeredPipeline (detectModel reads Stable Diffusion checkpoints)`,
      );
    if (id.family === 'sdxl')
      throw new DiffusionError(
        'ERR_UNSUPPORTED',
        `${path} is an SDXL diffusers folder; SDXL is detected but not supported yet`,
      );
    const f = readDiffusersFolder(path, options.variant);
    format = 'diffusers';
    ({ table, stored } = f);
    files = f.files;
    const headsOf = (v: unknown, levels: number): number[] | undefined =>
      typeof v === 'number' ? Array(levels).fill(v) : Array.isArray(v) ? v.map(Number) : undefined;
    // diffusers' attention_head_dim means heads (a historic misnomer); num_attention_heads wins when set.
    const levels = (f.unet.block_out_channels as number[] | undefined)?.length ?? 4;
    const heads = headsOf(f.unet.num_attention_heads ?? f.unet.attention_head_dim, levels);
    const scheduler = f.scheduler ? schedulerFromDiffusers(f.scheduler) : undefined;
    const vaeLevels = (f.vae.block_out_channels as number[] | undefined)?.length ?? 4;
    config = buildConfig(
      table,
      f.textKind,
      {
        source: 'config',
        heads,
        midHeads: heads?.[heads.length - 1],
        textHeads: f.textEncoder.num_attention_heads,
        prediction: scheduler?.predictionType,
        scheduler,
        nativeSize: typeof f.unet.sample_size === 'number' ? f.unet.sample_size * 2 ** (vaeLevels - 1) : undefined,
        upcastAttention: f.unet.upcast_attention ?? false,
        normGroups: f.unet.norm_num_groups,
        vaeNormGroups: f.vae.norm_num_groups,
        scalingFactor: f.vae.scaling_factor,
        activation: f.textEncoder.hidden_act,
        padToken: f.padToken,
      },
      path,
      sources,
    );
    crossCheck(config, f, path);
  } else {
    const s = detectSingleFile(path);
    format = 'single-file';
    ({ table, stored } = s);
    files = [path];
    const layers = textFromShapes(table, s.textKind, path).layers;
    const { facts, predictionSource, metaConfig: mc } = singleFileFacts(path, s.metadata, s.textKind, layers);
    metaConfig = mc;
    // A prediction type given by the caller or the metadata also picks the family's default scheduler.
    const givenPrediction =
      options.prediction ?? options.config?.scheduler?.predictionType ?? mc?.scheduler?.predictionType;
    if (givenPrediction) facts.prediction = givenPrediction;
    config = buildConfig(table, s.textKind, facts, path, sources);
    if (predictionSource) sources['scheduler.predictionType'] = predictionSource;
  }

  const overrides: DeepPartial<ModelConfig> = { ...(options.config ?? {}) };
  if (options.prediction) overrides.scheduler = { ...(overrides.scheduler ?? {}), predictionType: options.prediction };
  for (const p of overridePaths(metaConfig)) sources[p] = 'metadata';
  for (const p of overridePaths(overrides)) sources[p] = 'override';
  config = mergeConfig(mergeConfig(config, metaConfig), overrides);
  // The family follows the final prediction type unless the caller set it.
  if ((config.family === 'sd2' || config.family === 'sd2-v') && !overrides.family && !metaConfig?.family)
    config.family = config.scheduler.predictionType === 'v_prediction' ? 'sd2-v' : 'sd2';
  validateConfig(config, path);

  const resolved = resolveWeights(table, config, stored, path);
  const components = summarize(resolved.specs, table);
  config.dtype = dominantDType(components);
  return {
    path,
    format,
    config,
    weights: resolved.weights,
    components,
    files,
    unusedTensors: resolved.unused,
    sources,
  };
}

function crossCheck(config: ModelConfig, f: ReturnType<typeof readDiffusersFolder>, path: string): void {
  const checks: Array<[string, unknown, unknown]> = [
    [
      'unet/config.json block_out_channels',
      f.unet.block_out_channels,
      config.unet.channelMult.map((m) => m * config.unet.modelChannels),
    ],
    ['unet/config.json layers_per_block', f.unet.layers_per_block, config.unet.numResBlocks],
    ['unet/config.json cross_attention_dim', f.unet.cross_attention_dim, config.unet.contextDim],
    ['unet/config.json use_linear_projection', f.unet.use_linear_projection ?? false, config.unet.useLinearProjection],
    ['unet/config.json in_channels', f.unet.in_channels, config.unet.inChannels],
    ['vae/config.json block_out_channels', f.vae.block_out_channels, config.vae.channels],
    ['vae/config.json latent_channels', f.vae.latent_channels, config.vae.latentChannels],
    ['vae/config.json layers_per_block', f.vae.layers_per_block, config.vae.numResBlocks],
    ['text_encoder/config.json hidden_size', f.textEncoder.hidden_size, config.textEncoder.hidden],
    ['text_encoder/config.json num_hidden_layers', f.textEncoder.num_hidden_layers, config.textEncoder.layers],
    ['text_encoder/config.json intermediate_size', f.textEncoder.intermediate_size, config.textEncoder.intermediate],
    ['text_encoder/config.json vocab_size', f.textEncoder.vocab_size, config.textEncoder.vocabSize],
  ];
  const bad = checks.filter(([, cfg, shapes]) => cfg !== undefined && JSON.stringify(cfg) !== JSON.stringify(shapes));
  if (bad.length)
    throw new DiffusionError(
      'ERR_INVALID_FILE',
      `The configs in ${path} disagree with the weights: ${bad.map(([k, cfg, s]) => `${k} says ${JSON.stringify(cfg)} but the tensors give ${JSON.stringify(s)}`).join('; ')}`,
    );
}

function validateConfig(c: ModelConfig, path: string): void {
  const levels = c.unet.channelMult.length;
  const fail = (what: string, name: string, value: unknown) => {
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      `Expected ${what} for ${name} but received ${JSON.stringify(value)} (model ${path})`,
    );
  };
  if (c.unet.numHeads.length !== levels) fail(`${levels} entries (one per level)`, 'unet.numHeads', c.unet.numHeads);
  c.unet.numHeads.forEach((h, i) => {
    const w = c.unet.channelMult[i] * c.unet.modelChannels;
    if (c.unet.attentionLevels[i] && (!(h > 0) || w % h !== 0))
      fail(`a head count dividing ${w}`, `unet.numHeads[${i}]`, h);
  });
  const top = c.unet.channelMult[levels - 1] * c.unet.modelChannels;
  if (!(c.unet.midHeads > 0) || top % c.unet.midHeads !== 0)
    fail(`a head count dividing ${top}`, 'unet.midHeads', c.unet.midHeads);
  if (!(c.textEncoder.heads > 0) || c.textEncoder.hidden % c.textEncoder.heads !== 0)
    fail(`a head count dividing ${c.textEncoder.hidden}`, 'textEncoder.heads', c.textEncoder.heads);
  if (!(c.textEncoder.defaultLayersToRun >= 1 && c.textEncoder.defaultLayersToRun <= c.textEncoder.layers))
    fail(`1..${c.textEncoder.layers}`, 'textEncoder.defaultLayersToRun', c.textEncoder.defaultLayersToRun);
  if (!(c.nativeSize > 0 && c.nativeSize % 8 === 0)) fail('a positive multiple of 8', 'nativeSize', c.nativeSize);
}
