// Per-token prompt weights applied to text-encoder output, as AUTOMATIC1111 does it ("Original" emphasis,
// sd_hijack_clip.py process_tokens), for one chunk z of shape [T, C] (T = 77) with weights w[T]:
//
//   m0 = mean(z)                 (over all T*C values)
//   z' = z[t, :] * w[t]          (each token's embedding scaled by its weight)
//   m1 = mean(z')
//   out = z' * (m0 / m1)         (so mean(out) = m0 again)
//
// Every token keeps its direction; a weighted token's length changes relative to the others by w[t]. The
// means are taken in float64 here (torch reduces in float32: the results agree to float32 rounding).
// With `normalize: false` ("No norm" emphasis) the last step is skipped. When every weight is exactly 1 the
// input is returned unchanged, bit for bit (same values; a new array only when `copy` is asked).
// The rescale is skipped when m1 is 0 or not finite (a degenerate chunk), where A1111 would produce NaN.
import { invalid } from '../errors.js';

export interface WeightingOptions {
  /** Restore the original mean afterwards (A1111 "Original"; default true). */
  normalize?: boolean;
}

/** Returns the weighted embeddings of one chunk z [tokens, channels] (row-major). */
export function applyTokenWeights(
  z: Float32Array,
  weights: ArrayLike<number>,
  tokens: number,
  channels: number,
  options: WeightingOptions = {},
): Float32Array {
  if (!Number.isInteger(tokens) || tokens <= 0) invalid('a positive integer', 'tokens', tokens);
  if (!Number.isInteger(channels) || channels <= 0) invalid('a positive integer', 'channels', channels);
  if (z.length !== tokens * channels) invalid(`${tokens * channels} values`, 'embeddings', z);
  if (weights.length !== tokens) invalid(`${tokens} weights`, 'weights', weights.length);
  let allOne = true;
  for (let t = 0; t < tokens; t++) {
    const w = weights[t];
    if (!Number.isFinite(w)) invalid('finite weights', `weights[${t}]`, w);
    if (w !== 1) allOne = false;
  }
  if (allOne) return z;

  let before = 0;
  for (let i = 0; i < z.length; i++) before += z[i];
  const out = new Float32Array(z.length);
  let after = 0;
  for (let t = 0; t < tokens; t++) {
    const w = Math.fround(weights[t]);
    for (let c = 0, i = t * channels; c < channels; c++, i++) {
      out[i] = z[i] * w;
      after += out[i];
    }
  }
  if (options.normalize === false || after === 0 || !Number.isFinite(after)) return out;
  const scale = Math.fround(before / after); // = mean(z) / mean(z'), the counts cancel
  for (let i = 0; i < out.length; i++) out[i] *= scale;
  return out;
}

/** Applies applyTokenWeights to each 77-token chunk of a [1, 77*k, C] sequence. */
export function applyChunkWeights(
  z: Float32Array,
  chunkWeights: readonly ArrayLike<number>[],
  channels: number,
  tokensPerChunk = 77,
  options: WeightingOptions = {},
): Float32Array {
  const per = tokensPerChunk * channels;
  if (z.length !== per * chunkWeights.length) invalid(`${per * chunkWeights.length} values`, 'embeddings', z);
  let out: Float32Array | undefined;
  chunkWeights.forEach((w, k) => {
    const part = z.subarray(k * per, (k + 1) * per);
    const weighted = applyTokenWeights(part, w, tokensPerChunk, channels, options);
    if (weighted !== part) {
      out ??= z.slice();
      out.set(weighted, k * per);
    }
  });
  return out ?? z;
}
