// Guidance rescale (Lin et al., arXiv 2305.08891 §3.4; diffusers' rescale_noise_cfg; docs/design.md §5.4):
//   ε_r = ε̂ · std(ε_c)/std(ε̂)   per sample, std over C,H,W (the N−1 or N convention cancels in the ratio)
//   ε   = φ·ε_r + (1 − φ)·ε̂
// φ = 0 returns ε̂ unchanged (a copy); φ = 1 gives std(ε) = std(ε_c). Standard deviations are taken in
// float64, the blend in float32 in diffusers' order.
import { invalid } from '../errors.js';

function std(x: Float32Array, start: number, n: number): number {
  let s = 0;
  for (let i = start; i < start + n; i++) s += x[i];
  const mean = s / n;
  let s2 = 0;
  for (let i = start; i < start + n; i++) s2 += (x[i] - mean) * (x[i] - mean);
  return Math.sqrt(s2 / Math.max(1, n - 1));
}

/** Rescales guided noise `guided` towards the std of `epsCond`, per sample (batch = number of samples). */
export function rescaleGuidance(guided: Float32Array, epsCond: Float32Array, phi: number, batch = 1): Float32Array {
  if (guided.length !== epsCond.length) invalid(`${guided.length} values`, 'epsCond', epsCond);
  if (!Number.isFinite(phi) || phi < 0 || phi > 1) invalid('a number in [0, 1]', 'rescale', phi);
  if (!Number.isInteger(batch) || batch < 1 || guided.length % batch !== 0)
    invalid(`a batch size dividing ${guided.length}`, 'batch', batch);
  if (phi === 0) return guided.slice();
  const out = new Float32Array(guided.length);
  const per = guided.length / batch;
  const p = Math.fround(phi);
  const q = Math.fround(1 - phi);
  for (let b = 0; b < batch; b++) {
    const sg = std(guided, b * per, per);
    const ratio = sg > 0 ? Math.fround(std(epsCond, b * per, per) / sg) : 1;
    for (let i = b * per; i < (b + 1) * per; i++) {
      const rescaled = Math.fround(guided[i] * ratio);
      out[i] = Math.fround(p * rescaled) + Math.fround(q * guided[i]);
    }
  }
  return out;
}
