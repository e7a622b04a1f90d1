// Classifier-free guidance (docs/design.md §5.4): ε̂ = ε_u + w·(ε_c − ε_u), in float32 with torch's operation order
// (diff = ε_c − ε_u, then w·diff, then + ε_u), so it matches diffusers' pipelines bit for bit. The weight may
// be a per-pixel map (S-CFG's w·rate(p)): `weightMap` of length H·W, broadcast over channels (and batch).
import { invalid } from '../errors.js';

function checkPair(epsUncond: Float32Array, epsCond: Float32Array): void {
  if (!(epsUncond instanceof Float32Array)) invalid('a Float32Array', 'epsUncond', epsUncond);
  if (!(epsCond instanceof Float32Array)) invalid('a Float32Array', 'epsCond', epsCond);
  if (epsUncond.length !== epsCond.length) invalid(`${epsUncond.length} values`, 'epsCond', epsCond);
}

/** ε_u + w(ε_c − ε_u) with a scalar weight. */
export function cfg(epsUncond: Float32Array, epsCond: Float32Array, scale: number): Float32Array {
  checkPair(epsUncond, epsCond);
  if (!Number.isFinite(scale)) invalid('a finite number', 'scale', scale);
  const w = Math.fround(scale);
  const out = new Float32Array(epsUncond.length);
  for (let i = 0; i < out.length; i++) {
    const diff = Math.fround(epsCond[i] - epsUncond[i]);
    out[i] = epsUncond[i] + Math.fround(w * diff);
  }
  return out;
}

/**
 * ε_u + (w·m(p))(ε_c − ε_u) with a per-pixel multiplier map m of length H·W (NCHW data: pixel = i mod H·W).
 * The product w·m(p) is rounded to float32 first, as torch's `guidance_scale * rate * diff`.
 */
export function cfgWithMap(
  epsUncond: Float32Array,
  epsCond: Float32Array,
  scale: number,
  weightMap: Float32Array,
): Float32Array {
  checkPair(epsUncond, epsCond);
  if (!Number.isFinite(scale)) invalid('a finite number', 'scale', scale);
  const hw = weightMap.length;
  if (hw === 0 || epsUncond.length % hw !== 0)
    invalid(`a map whose length divides ${epsUncond.length}`, 'weightMap', weightMap);
  const w = Math.fround(scale);
  const out = new Float32Array(epsUncond.length);
  for (let i = 0; i < out.length; i++) {
    const diff = Math.fround(epsCond[i] - epsUncond[i]);
    const wp = Math.fround(w * weightMap[i % hw]);
    out[i] = epsUncond[i] + Math.fround(wp * diff);
  }
  return out;
}
