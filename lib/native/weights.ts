// The weight list a native model constructor takes: the files to map and, for every
// canonical (LDM single-file) tensor name, which file and tensor it comes from.
import type { WeightMap } from '../loading/types.js';

export interface NativeWeights {
  files: string[];
  /** [canonical name, index into files, tensor name inside that file] */
  tensors: Array<[string, number, string]>;
}

/** Converts a WeightMap (canonical name -> file + tensor), keeping the names `keep` accepts (all by default). */
export function toNativeWeights(map: WeightMap, keep: (canonical: string) => boolean = () => true): NativeWeights {
  const files: string[] = [];
  const index = new Map<string, number>();
  const tensors: Array<[string, number, string]> = [];
  for (const [canonical, loc] of Object.entries(map)) {
    if (!keep(canonical)) continue;
    let i = index.get(loc.file);
    if (i === undefined) {
      i = files.length;
      files.push(loc.file);
      index.set(loc.file, i);
    }
    tensors.push([canonical, i, loc.tensor]);
  }
  return { files, tensors };
}
