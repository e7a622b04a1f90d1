// Model structure read from canonical tensor shapes, and the check of a checkpoint against the
// spec of that structure. Shared by single files and diffusers folders: both are first turned into
// a table of canonical name -> stored tensor.
import { DiffusionError } from '../errors.js';
import { type Component, modelSpec, type TensorSpec } from './architecture.js';
import { CLIP_PREFIX, OPENCLIP_PREFIX, UNET_PREFIX, VAE_PREFIX } from './keys.js';
import type { TensorDType, TextEncoderConfig, UNetConfig, VaeConfig, WeightMap } from './types.js';

export interface StoredTensor {
  file: string;
  tensor: string;
  dtype: TensorDType;
  /** shape of the stored tensor (the whole fused tensor when rows is set) */
  shape: number[];
  rows?: [number, number];
}

/** canonical name -> where it is stored */
export type TensorTable = Map<string, StoredTensor>;

/** The canonical shape of an entry (a row slice has the slice's shape). */
export function canonicalShape(t: StoredTensor): number[] {
  return t.rows ? [t.rows[1] - t.rows[0], ...t.shape.slice(1)] : t.shape;
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

class ShapeReader {
  constructor(
    private readonly table: TensorTable,
    private readonly where: string,
  ) {}
  has(name: string): boolean {
    return this.table.has(name);
  }
  shape(name: string, what: string): number[] {
    const t = this.table.get(name);
    if (!t)
      throw new DiffusionError(
        'ERR_INVALID_FILE',
        `Expected tensor "${name}" (${what}) in ${this.where} but it is missing`,
      );
    return canonicalShape(t);
  }
  count(pattern: RegExp): number {
    const seen = new Set<string>();
    for (const name of this.table.keys()) {
      const m = pattern.exec(name);
      if (m) seen.add(m[1]);
    }
    return seen.size;
  }
}

/** Fields of the U-Net config readable from shapes (heads, upcast and norm groups are not). */
export type UNetShapeConfig = Omit<UNetConfig, 'numHeads' | 'midHeads' | 'upcastAttention' | 'normGroups'>;

export function unetFromShapes(table: TensorTable, where: string): UNetShapeConfig {
  const r = new ShapeReader(table, where);
  const p = UNET_PREFIX;
  const [modelChannels, inChannels] = r.shape(`${p}input_blocks.0.0.weight`, 'U-Net input convolution');
  const [outChannels] = r.shape(`${p}out.2.weight`, 'U-Net output convolution');
  const ops: number[] = [];
  for (const name of table.keys()) {
    const m = /^model\.diffusion_model\.input_blocks\.(\d+)\.0\.op\.weight$/.exec(name);
    if (m) ops.push(Number(m[1]));
  }
  ops.sort((a, b) => a - b);
  const inputBlocks = r.count(/^model\.diffusion_model\.input_blocks\.(\d+)\./);
  const levels = ops.length + 1;
  const numResBlocks = ops.length ? ops[0] - 1 : inputBlocks - 1;
  ops.forEach((k, i) => {
    if (k !== (i + 1) * (numResBlocks + 1))
      throw new DiffusionError(
        'ERR_UNSUPPORTED',
        `Expected the U-Net downsampler of level ${i} at input_blocks.${(i + 1) * (numResBlocks + 1)} but found it at input_blocks.${k} in ${where}`,
      );
  });
  const channelMult: number[] = [];
  const attentionLevels: boolean[] = [];
  for (let i = 0; i < levels; i++) {
    const first = 1 + i * (numResBlocks + 1);
    const [width] = r.shape(`${p}input_blocks.${first}.0.out_layers.3.weight`, `U-Net level ${i} width`);
    if (width % modelChannels !== 0)
      throw new DiffusionError(
        'ERR_UNSUPPORTED',
        `Expected U-Net level ${i} width to be a multiple of ${modelChannels} but received ${width} in ${where}`,
      );
    channelMult.push(width / modelChannels);
    attentionLevels.push(r.has(`${p}input_blocks.${first}.1.proj_in.weight`));
  }
  const mid = `${p}middle_block.1`;
  const transformerDepth = r.count(/^model\.diffusion_model\.middle_block\.1\.transformer_blocks\.(\d+)\./);
  const [, contextDim] = r.shape(
    `${mid}.transformer_blocks.0.attn2.to_k.weight`,
    'U-Net cross-attention key projection',
  );
  const useLinearProjection = r.shape(`${mid}.proj_in.weight`, 'U-Net transformer input projection').length === 2;
  return {
    inChannels,
    outChannels,
    modelChannels,
    channelMult,
    numResBlocks,
    attentionLevels,
    transformerDepth,
    contextDim,
    useLinearProjection,
  };
}

export type VaeShapeConfig = Omit<VaeConfig, 'scalingFactor' | 'normGroups'>;

export function vaeFromShapes(table: TensorTable, where: string): VaeShapeConfig {
  const r = new ShapeReader(table, where);
  const p = VAE_PREFIX;
  const levels = r.count(/^first_stage_model\.encoder\.down\.(\d+)\./);
  if (levels === 0) r.shape(`${p}encoder.down.0.block.0.conv1.weight`, 'VAE encoder');
  const channels: number[] = [];
  for (let i = 0; i < levels; i++)
    channels.push(r.shape(`${p}encoder.down.${i}.block.0.conv2.weight`, `VAE level ${i} width`)[0]);
  const numResBlocks = r.count(/^first_stage_model\.encoder\.down\.0\.block\.(\d+)\./);
  const [, latentChannels] = r.shape(`${p}decoder.conv_in.weight`, 'VAE decoder input convolution');
  return { latentChannels, channels, numResBlocks };
}

export type TextShapeConfig = Pick<
  TextEncoderConfig,
  'kind' | 'hidden' | 'layers' | 'intermediate' | 'vocabSize' | 'maxPositions'
>;

export function textFromShapes(table: TensorTable, kind: 'clip' | 'openclip', where: string): TextShapeConfig {
  const r = new ShapeReader(table, where);
  if (kind === 'clip') {
    const p = `${CLIP_PREFIX}text_model.`;
    const [vocabSize, hidden] = r.shape(`${p}embeddings.token_embedding.weight`, 'CLIP token embedding');
    const [maxPositions] = r.shape(`${p}embeddings.position_embedding.weight`, 'CLIP position embedding');
    const layers = r.count(/^cond_stage_model\.transformer\.text_model\.encoder\.layers\.(\d+)\./);
    const [intermediate] = r.shape(`${p}encoder.layers.0.mlp.fc1.weight`, 'CLIP MLP');
    return { kind, hidden, layers, intermediate, vocabSize, maxPositions };
  }
  const p = OPENCLIP_PREFIX;
  const [vocabSize, hidden] = r.shape(`${p}token_embedding.weight`, 'OpenCLIP token embedding');
  const [maxPositions] = r.shape(`${p}positional_embedding`, 'OpenCLIP positional embedding');
  const layers = r.count(/^cond_stage_model\.model\.transformer\.resblocks\.(\d+)\./);
  const [intermediate] = r.shape(`${p}transformer.resblocks.0.mlp.c_fc.weight`, 'OpenCLIP MLP');
  return { kind, hidden, layers, intermediate, vocabSize, maxPositions };
}

/** VAE attention projections: LDM [C, C, 1, 1] and diffusers [C, C] are the same data. */
function shapesAgree(spec: TensorSpec, actual: number[]): boolean {
  if (spec.shape.length === actual.length && spec.shape.every((d, i) => d === actual[i])) return true;
  const vaeAttention = /\.attn_1\.(q|k|v|proj_out)\.weight$/.test(spec.name);
  return vaeAttention && numel(spec.shape) === numel(actual) && actual[0] === spec.shape[0];
}

export interface ResolvedWeights {
  weights: WeightMap;
  specs: TensorSpec[];
  /** stored tensors that no canonical name uses */
  unused: string[];
}

/**
 * Checks the table against the spec of `config` (every tensor present, shapes equal) and returns
 * the weight map. All problems are reported at once (first 12).
 */
export function resolveWeights(
  table: TensorTable,
  config: { unet: UNetConfig; vae: VaeConfig; textEncoder: TextEncoderConfig },
  storedNames: Array<{ file: string; tensor: string }>,
  where: string,
): ResolvedWeights {
  const specs = modelSpec(config);
  const problems: string[] = [];
  const weights: WeightMap = {};
  const used = new Set<string>();
  for (const spec of specs) {
    const t = table.get(spec.name);
    if (!t) {
      problems.push(`missing ${spec.name} ${JSON.stringify(spec.shape)}`);
      continue;
    }
    const shape = canonicalShape(t);
    if (!shapesAgree(spec, shape))
      problems.push(`${spec.name}: expected shape ${JSON.stringify(spec.shape)} but received ${JSON.stringify(shape)}`);
    weights[spec.name] = t.rows ? { file: t.file, tensor: t.tensor, rows: t.rows } : { file: t.file, tensor: t.tensor };
    used.add(`${t.file}\0${t.tensor}`);
  }
  if (problems.length) {
    const more = problems.length > 12 ? `\n  ... and ${problems.length - 12} more` : '';
    throw new DiffusionError(
      'ERR_INVALID_FILE',
      `The checkpoint ${where} does not match the detected architecture (${problems.length} problems):\n  ${problems.slice(0, 12).join('\n  ')}${more}`,
    );
  }
  const unused = storedNames.filter((s) => !used.has(`${s.file}\0${s.tensor}`)).map((s) => s.tensor);
  return { weights, specs, unused };
}

export interface ComponentSummary {
  tensors: number;
  parameters: number;
  bytes: number;
  /** parameters per stored dtype */
  dtypes: Partial<Record<TensorDType, number>>;
}

const DTYPE_BYTES: Record<TensorDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function summarize(specs: TensorSpec[], table: TensorTable): Record<Component, ComponentSummary> {
  const out = {} as Record<Component, ComponentSummary>;
  for (const c of ['unet', 'vae', 'textEncoder'] as Component[])
    out[c] = { tensors: 0, parameters: 0, bytes: 0, dtypes: {} };
  for (const spec of specs) {
    const t = table.get(spec.name) as StoredTensor;
    const n = numel(spec.shape);
    const s = out[spec.component];
    s.tensors++;
    s.parameters += n;
    s.bytes += n * (DTYPE_BYTES[t.dtype] ?? 0);
    s.dtypes[t.dtype] = (s.dtypes[t.dtype] ?? 0) + n;
  }
  return out;
}

/** The float dtype holding the most parameters. */
export function dominantDType(summary: Record<Component, ComponentSummary>): TensorDType {
  const total: Partial<Record<TensorDType, number>> = {};
  for (const s of Object.values(summary))
    for (const [d, n] of Object.entries(s.dtypes))
      total[d as TensorDType] = (total[d as TensorDType] ?? 0) + (n as number);
  let best: TensorDType = 'F32';
  let bestN = -1;
  for (const [d, n] of Object.entries(total))
    if ((n as number) > bestN) [best, bestN] = [d as TensorDType, n as number];
  return best;
}
