// TypeScript view of a safetensors header (for detection and inspection). The native reader
// (native/core/safetensors.cc) parses and validates it: header length, JSON, dtypes, shapes,
// offsets inside the file, no overlaps. A bad file is a DiffusionError naming the file and tensor.
import { callNative, invalid } from '../errors.js';
import { loadBinding } from '../native/load.js';
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

interface SafetensorsBinding {
  inspectSafetensors(path: string): Omit<SafetensorsHeader, 'path'>;
}

/**
 * Reads and validates the header of a `.safetensors` file (the data is not read).
 * Throws DiffusionError: ERR_IO (missing file, directory), ERR_INVALID_FILE (malformed),
 * ERR_UNSUPPORTED (unknown dtype).
 */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  if (typeof path !== 'string' || path.length === 0) invalid('a file path', 'path', path);
  const header = callNative(() => loadBinding<SafetensorsBinding>().inspectSafetensors(path));
  return { path, ...header };
}
