// TypeScript view of a safetensors header (for detection and inspection).
// The native reader (native/core/safetensors.cc) is the one that validates offsets when loading.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { DiffusionError } from '../errors.js';
import type { TensorDType } from './types.js';

export interface TensorInfo {
  name: string;
  dtype: TensorDType;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  path: string;
  fileSize: number;
  headerBytes: number;
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

const MAX_HEADER = 100 * 1024 * 1024;

export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new DiffusionError('ERR_IO', `Could not open ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile()) throw new DiffusionError('ERR_IO', `Expected a regular file for ${path} but received a directory`);
  const fd = openSync(path, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    if (readSync(fd, lenBuf, 0, 8, 0) < 8) throw bad(path, `Expected at least 8 bytes (the header length) but received ${st.size}`);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > MAX_HEADER) throw bad(path, `Expected a header length of at most ${MAX_HEADER} bytes but received ${n}`);
    if (n > st.size - 8) throw bad(path, `Expected a header of ${n} bytes but the file has only ${st.size - 8} after the length (truncated?)`);
    const hb = Buffer.alloc(n);
    readSync(fd, hb, 0, n, 8);
    let json: Record<string, any>;
    try {
      json = JSON.parse(hb.toString('utf8'));
    } catch (err) {
      throw bad(path, `Invalid JSON header: ${(err as Error).message}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad(path, 'Expected a JSON object as the header');
    const tensors: TensorInfo[] = [];
    for (const [name, v] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      if (typeof v !== 'object' || v === null || !Array.isArray(v.shape) || !Array.isArray(v.data_offsets) || typeof v.dtype !== 'string') {
        throw bad(path, `Expected an object with dtype, shape and data_offsets for tensor "${name}"`);
      }
      tensors.push({ name, dtype: v.dtype as TensorDType, shape: v.shape as number[], dataOffsets: v.data_offsets as [number, number] });
    }
    return { path, fileSize: st.size, headerBytes: n, tensors, metadata: (json.__metadata__ ?? {}) as Record<string, string> };
  } finally {
    closeSync(fd);
  }
}

function bad(path: string, what: string): DiffusionError {
  return new DiffusionError('ERR_INVALID_FILE', `Invalid safetensors file ${path}: ${what}`);
}
