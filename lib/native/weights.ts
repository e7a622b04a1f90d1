import type { WeightMap } from '../loading/types.js';

/** The addon's weights argument: files opened once, then [canonical, fileIndex, tensor, rowStart?, rowEnd?]. */
export interface NativeWeights {
  files: string[];
  tensors: Array<[string, number, string] | [string, number, string, number, number]>;
}

/** Converts a WeightMap, optionally keeping only canonical names with one of the given prefixes. */
export function toNativeWeights(map: WeightMap, prefixes?: string[]): NativeWeights {
  const files: string[] = [];
  const index = new Map<string, number>();
  const tensors: NativeWeights['tensors'] = [];
  for (const [name, loc] of Object.entries(map)) {
    if (prefixes && !prefixes.some((p) => name.startsWith(p))) continue;
    let i = index.get(loc.file);
    if (i === undefined) {
      i = files.length;
      files.push(loc.file);
      index.set(loc.file, i);
    }
    tensors.push(loc.rows ? [name, i, loc.tensor, loc.rows[0], loc.rows[1]] : [name, i, loc.tensor]);
  }
  return { files, tensors };
}
