// Random-weight checkpoints of the full SD 1.5 / SD 2.1 architectures in the single-file LDM layout,
// for benchmarks without a download. The tensor list is the architecture spec detection checks
// against (lib/loading/architecture.ts), written the way real files store it (SD2: fused OpenCLIP
// in_proj, text_projection, logit_scale; SD1: position_ids; both: the LDM DDPM buffers).
// Data is streamed to disk a chunk at a time and is a pure function of (seed, tensor name).
import { closeSync, openSync, writeSync } from 'node:fs';
import { invalid } from '../errors.js';
import { modelSpec, type TensorSpec } from '../loading/architecture.js';
import { sd2Scheduler, sd15Scheduler } from '../loading/defaults.js';
import { CLIP_PREFIX, OPENCLIP_PREFIX } from '../loading/keys.js';
import type { ModelConfig, TensorDType } from '../loading/types.js';

export type CheckpointFamily = 'sd15' | 'sd21';

export interface MakeCheckpointOptions {
  family: CheckpointFamily;
  dtype: 'f16' | 'f32';
  seed?: number;
  /** multiplies every width (rounded to multiples of 32, text hidden to multiples of 64): small test models */
  widthScale?: number;
}

interface PlannedTensor {
  name: string;
  dtype: TensorDType;
  shape: number[];
  begin: number;
  end: number;
  fill: Fill;
}

type Fill =
  | { kind: 'uniform'; bound: number }
  | { kind: 'const'; value: number }
  | { kind: 'fused'; bound: number } // SD2 in_proj: uniform with the fan-in of one projection
  | { kind: 'positions' }
  | { kind: 'values'; values: Float64Array };

export interface CheckpointPlan {
  config: ModelConfig;
  tensors: PlannedTensor[];
  metadata: Record<string, string>;
  header: Buffer;
  /** total file size */
  bytes: number;
}

/** The standard SD 1.5 / SD 2.1 config, optionally narrowed by widthScale. */
export function standardConfig(family: CheckpointFamily, widthScale = 1): ModelConfig {
  const w32 = (x: number) => Math.max(32, Math.round((x * widthScale) / 32) * 32);
  const w64 = (x: number) => Math.max(64, Math.round((x * widthScale) / 64) * 64);
  const sd2 = family === 'sd21';
  const mc = w32(320);
  const mult = [1, 2, 4, 4];
  const hidden = w64(sd2 ? 1024 : 768);
  return {
    family: sd2 ? 'sd2-v' : 'sd1',
    nativeSize: sd2 ? 768 : 512,
    unet: {
      inChannels: 4,
      outChannels: 4,
      modelChannels: mc,
      channelMult: mult,
      numResBlocks: 2,
      attentionLevels: [true, true, true, false],
      numHeads: sd2 ? mult.map((m) => Math.max(1, Math.ceil((m * mc) / 64))) : [8, 8, 8, 8],
      midHeads: sd2 ? Math.max(1, Math.ceil((4 * mc) / 64)) : 8,
      transformerDepth: 1,
      contextDim: hidden,
      useLinearProjection: sd2,
      upcastAttention: sd2,
      normGroups: 32,
    },
    vae: {
      latentChannels: 4,
      channels: [128, 256, 512, 512].map(w32),
      numResBlocks: 2,
      scalingFactor: 0.18215,
      normGroups: 32,
    },
    textEncoder: {
      kind: sd2 ? 'openclip' : 'clip',
      hidden,
      layers: sd2 ? 24 : 12,
      heads: hidden / 64,
      intermediate: 4 * hidden,
      vocabSize: 49408,
      maxPositions: 77,
      activation: sd2 ? 'gelu' : 'quick_gelu',
      defaultLayersToRun: sd2 ? 23 : 12,
      padToken: sd2 ? 0 : 49407,
    },
    scheduler: sd2 ? sd2Scheduler('v_prediction') : sd15Scheduler(),
    dtype: 'F16',
  };
}

const DDPM_BUFFERS = [
  'betas',
  'alphas_cumprod',
  'alphas_cumprod_prev',
  'sqrt_alphas_cumprod',
  'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod',
  'sqrt_recip_alphas_cumprod',
  'sqrt_recipm1_alphas_cumprod',
  'posterior_variance',
  'posterior_log_variance_clipped',
  'posterior_mean_coef1',
  'posterior_mean_coef2',
];

/** LDM's register_schedule buffers (linear-in-sqrt betas 0.00085..0.012, 1000 steps), in float64. */
function ddpmBuffers(): Record<string, Float64Array> {
  const n = 1000;
  const betas = Float64Array.from(
    { length: n },
    (_, i) => (Math.sqrt(0.00085) + ((Math.sqrt(0.012) - Math.sqrt(0.00085)) * i) / (n - 1)) ** 2,
  );
  const ac = new Float64Array(n);
  for (let i = 0; i < betas.length; i++) ac[i] = (i ? ac[i - 1] : 1) * (1 - betas[i]);
  const prev = Float64Array.from({ length: n }, (_, i) => (i ? ac[i - 1] : 1));
  const map = (f: (i: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i));
  const postVar = map((i) => (betas[i] * (1 - prev[i])) / (1 - ac[i]));
  return {
    betas,
    alphas_cumprod: ac,
    alphas_cumprod_prev: prev,
    sqrt_alphas_cumprod: map((i) => Math.sqrt(ac[i])),
    sqrt_one_minus_alphas_cumprod: map((i) => Math.sqrt(1 - ac[i])),
    log_one_minus_alphas_cumprod: map((i) => Math.log(1 - ac[i])),
    sqrt_recip_alphas_cumprod: map((i) => Math.sqrt(1 / ac[i])),
    sqrt_recipm1_alphas_cumprod: map((i) => Math.sqrt(1 / ac[i] - 1)),
    posterior_variance: postVar,
    posterior_log_variance_clipped: map((i) => Math.log(Math.max(postVar[i], 1e-20))),
    posterior_mean_coef1: map((i) => (betas[i] * Math.sqrt(prev[i])) / (1 - ac[i])),
    posterior_mean_coef2: map((i) => ((1 - prev[i]) * Math.sqrt(1 - betas[i])) / (1 - ac[i])),
  };
}

function fillOf(spec: TensorSpec): Fill {
  switch (spec.init) {
    case 'norm':
      return { kind: 'const', value: 1 };
    case 'bias':
      return { kind: 'const', value: 0 };
    case 'embedding': // CLIP init: tokens std 0.02, positions std 0.01; uniform bound = std * sqrt(3)
      return { kind: 'uniform', bound: (/position/.test(spec.name) ? 0.01 : 0.02) * Math.sqrt(3) };
    default: // variance 1 / fan_in
      return { kind: 'uniform', bound: Math.sqrt(3 / (spec.fanIn ?? spec.shape[spec.shape.length - 1])) };
  }
}

/** Tensor list, offsets and header of the checkpoint (no data yet). */
export function planCheckpoint(opts: MakeCheckpointOptions): CheckpointPlan {
  if (opts.family !== 'sd15' && opts.family !== 'sd21') invalid('"sd15" or "sd21"', 'family', opts.family);
  if (opts.dtype !== 'f16' && opts.dtype !== 'f32') invalid('"f16" or "f32"', 'dtype', opts.dtype);
  const scale = opts.widthScale ?? 1;
  if (!(scale > 0 && scale <= 1)) invalid('a number in (0, 1]', 'widthScale', scale);
  const config = standardConfig(opts.family, scale);
  config.dtype = opts.dtype === 'f16' ? 'F16' : 'F32';
  const dtype: TensorDType = config.dtype;
  const entries: Array<{ name: string; dtype: TensorDType; shape: number[]; fill: Fill }> = [];
  const h = config.textEncoder.hidden;
  for (const spec of modelSpec(config)) {
    const fused = /^(.*\.attn)\.q_proj\.(weight|bias)$/.exec(spec.name);
    if (spec.name.startsWith(OPENCLIP_PREFIX) && /\.attn\.[kv]_proj\./.test(spec.name)) continue;
    if (spec.name.startsWith(OPENCLIP_PREFIX) && fused) {
      const shape = fused[2] === 'weight' ? [3 * h, h] : [3 * h];
      entries.push({
        name: `${fused[1]}.in_proj_${fused[2]}`,
        dtype,
        shape,
        fill: fused[2] === 'weight' ? { kind: 'fused', bound: Math.sqrt(3 / h) } : { kind: 'const', value: 0 },
      });
      continue;
    }
    entries.push({ name: spec.name, dtype, shape: spec.shape, fill: fillOf(spec) });
  }
  if (config.textEncoder.kind === 'openclip') {
    entries.push({
      name: `${OPENCLIP_PREFIX}text_projection`,
      dtype,
      shape: [h, h],
      fill: { kind: 'uniform', bound: Math.sqrt(3 / h) },
    });
    entries.push({
      name: `${OPENCLIP_PREFIX}logit_scale`,
      dtype,
      shape: [],
      fill: { kind: 'const', value: Math.log(1 / 0.07) },
    });
  } else {
    entries.push({
      name: `${CLIP_PREFIX}text_model.embeddings.position_ids`,
      dtype: 'I64',
      shape: [1, config.textEncoder.maxPositions],
      fill: { kind: 'positions' },
    });
  }
  const buffers = ddpmBuffers();
  for (const name of DDPM_BUFFERS)
    entries.push({ name, dtype: 'F32', shape: [1000], fill: { kind: 'values', values: buffers[name] } });

  const size: Record<string, number> = { F32: 4, F16: 2, I64: 8 };
  let offset = 0;
  const tensors: PlannedTensor[] = entries.map((e) => {
    const bytes = e.shape.reduce((a, b) => a * b, 1) * size[e.dtype];
    const t = { ...e, begin: offset, end: offset + bytes };
    offset += bytes;
    return t;
  });
  const metadata: Record<string, string> = {
    format: 'pt',
    'modelspec.architecture': opts.family === 'sd21' ? 'stable-diffusion-v2-768-v' : 'stable-diffusion-v1',
    'modelspec.prediction_type': opts.family === 'sd21' ? 'v' : 'epsilon',
    'modelspec.resolution': `${config.nativeSize}x${config.nativeSize}`,
    'native_diffusion.generator': `make-checkpoint seed=${opts.seed ?? 0} width_scale=${scale} (random weights)`,
  };
  // Heads are not visible in shapes; narrowed models record them (full-size ones follow the family rule).
  if (scale !== 1)
    metadata['native_diffusion.config'] = JSON.stringify({
      unet: { numHeads: config.unet.numHeads, midHeads: config.unet.midHeads },
      textEncoder: { heads: config.textEncoder.heads },
    });
  const json: Record<string, unknown> = { __metadata__: metadata };
  for (const t of tensors) json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
  let text = JSON.stringify(json);
  text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const body = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(8 + body.length);
  header.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(header, 8);
  return { config, tensors, metadata, header, bytes: header.length + offset };
}

/** FNV-1a of the seed and name: one independent stream per tensor. */
function tensorSeed(seed: number, name: string): number {
  let x = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) x = Math.imul(x ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return x;
}

/** mulberry32: small, fast, good enough for weights. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> float16 bits, round to nearest even. */
export function toHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

const CHUNK = 1 << 20; // elements per write

function writeAll(fd: number, buf: Buffer, bytes: number): void {
  for (let off = 0; off < bytes; ) off += writeSync(fd, buf, off, bytes - off);
}

/** Writes the checkpoint to `path`, streaming; calls onProgress(bytesWritten, total). */
export function writeCheckpoint(
  path: string,
  opts: MakeCheckpointOptions,
  onProgress?: (done: number, total: number) => void,
): CheckpointPlan {
  const plan = planCheckpoint(opts);
  const seed = opts.seed ?? 0;
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, plan.header, plan.header.length);
    let done = plan.header.length;
    const buf = Buffer.alloc(CHUNK * 8);
    const values = new Float64Array(CHUNK);
    // little-endian views (safetensors data is little-endian; so are x86-64 and arm64)
    const f32 = new Float32Array(buf.buffer, buf.byteOffset, CHUNK * 2);
    const u16 = new Uint16Array(buf.buffer, buf.byteOffset, CHUNK * 4);
    const i64 = new BigInt64Array(buf.buffer, buf.byteOffset, CHUNK);
    for (const t of plan.tensors) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      const next = rng(tensorSeed(seed, t.name));
      const f = t.fill;
      for (let start = 0; start < count; start += CHUNK) {
        const n = Math.min(CHUNK, count - start);
        if (f.kind === 'const') values.fill(f.value, 0, n);
        else if (f.kind === 'values') values.set(f.values.subarray(start, start + n));
        else if (f.kind === 'positions') for (let i = 0; i < n; i++) values[i] = start + i;
        else for (let i = 0; i < n; i++) values[i] = (2 * next() - 1) * f.bound;
        if (t.dtype === 'F16') for (let i = 0; i < n; i++) u16[i] = toHalf(values[i]);
        else if (t.dtype === 'F32') for (let i = 0; i < n; i++) f32[i] = values[i];
        else for (let i = 0; i < n; i++) i64[i] = BigInt(values[i]);
        const bytes = (n * (t.end - t.begin)) / count;
        writeAll(fd, buf, bytes);
        done += bytes;
        onProgress?.(done, plan.bytes);
      }
    }
  } finally {
    closeSync(fd);
  }
  return plan;
}
