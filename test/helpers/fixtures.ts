// Pure-TS safetensors reading for test fixtures (small files; the product reader is native).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = join(repoRoot, 'test', 'fixtures');

/** The shared reference set beside the repository (CI clones with ../shared next to it). */
export const sharedFixturesDir = join(repoRoot, '..', 'shared', 'fixtures');

/**
 * A fixture path: test/fixtures/<rel>, else ../shared/fixtures/<rel>. The copied set holds
 * every case file and the single-file checkpoints; the diffusers folders (another 34 MB of the
 * same weights) are read from ../shared to keep the repository small.
 */
export function fixture(rel: string): string {
  for (const dir of [fixturesDir, sharedFixturesDir]) {
    const p = join(dir, rel);
    if (existsSync(p)) return p;
  }
  throw new Error(`missing fixture ${rel} (looked in ${fixturesDir} and ${sharedFixturesDir})`);
}

export interface FixtureTensor {
  dtype: string;
  shape: number[];
  /** float tensors as Float32Array (F16 widened), integer tensors as number[] */
  data: Float32Array | number[];
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function readSafetensors(path: string): {
  tensors: Record<string, FixtureTensor>;
  metadata: Record<string, string>;
} {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, any>;
  const base = 8 + n;
  const tensors: Record<string, FixtureTensor> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets as [number, number];
    const raw = buf.subarray(base + b, base + e);
    const count = (info.shape as number[]).reduce((a: number, x: number) => a * x, 1);
    let data: Float32Array | number[];
    switch (info.dtype) {
      case 'F32':
        data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
        break;
      case 'F64':
        data = Float32Array.from(new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)));
        break;
      case 'F16':
        data = Float32Array.from({ length: count }, (_, i) => f16(raw.readUInt16LE(2 * i)));
        break;
      case 'I64':
        data = Array.from({ length: count }, (_, i) => Number(raw.readBigInt64LE(8 * i)));
        break;
      case 'I32':
        data = Array.from({ length: count }, (_, i) => raw.readInt32LE(4 * i));
        break;
      default:
        throw new Error(`fixture dtype ${info.dtype} not handled`);
    }
    tensors[name] = { dtype: info.dtype, shape: info.shape, data };
  }
  return { tensors, metadata: (header.__metadata__ ?? {}) as Record<string, string> };
}

/** max |a - b| */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
