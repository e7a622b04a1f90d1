// Sinc (ideal low-pass) downsampling between the scales of a layered model (docs/design.md §5.2).
//
// Per axis of length N, to M = N/k: orthonormal DFT X[f] = N^-1/2 Σ x[n] e^{-2πi fn/N}; keep the bins with
// |f| < M/2; when M is even the output's Nyquist bin is (X[+M/2] + X[-M/2])/√2 (for real input the two are
// conjugates, so this is √2·Re X[M/2] and the output stays real); inverse orthonormal DFT of length M.
// This orthonormal operator maps white N(0,1) noise to white N(0,1) noise: `sincDownsampleNoise`.
// Scaled by k^-1/2 per axis it preserves the mean instead (a constant stays that constant, a band-limited
// image is sampled exactly): that is D, `sincDownsample`, used for states: with z = αx + σε at the top scale,
// D(z) = αD(x) + σD(ε) and D(ε) has variance 1/k², so z_lo = D(z)/sqrt(α² + σ²/k²) is a state of the lower
// scale with α' = α/s, σ' = σ/(k·s), s = sqrt(α² + σ²/k²): α'² + σ'² = 1 and logSNR' = logSNR + 2 ln k.
// Factor 1 returns a copy (the fold formula would count the one Nyquist bin twice).
import { invalid } from '../errors.js';
import { fft } from './fft.js';

/** One axis: n samples at stride `stride` from `src` -> m samples into `dst` (orthonormal, float64). */
function resampleLine(
  src: Float64Array,
  srcOffset: number,
  stride: number,
  n: number,
  dst: Float64Array,
  dstOffset: number,
  dstStride: number,
  m: number,
  re: Float64Array,
  im: Float64Array,
  outRe: Float64Array,
  outIm: Float64Array,
): void {
  for (let i = 0; i < n; i++) {
    re[i] = src[srcOffset + i * stride];
    im[i] = 0;
  }
  fft(re, im);
  outRe.fill(0);
  outIm.fill(0);
  const half = m >> 1;
  const keep = m % 2 === 0 ? half - 1 : half; // bins 1..keep on each side, Nyquist separately
  outRe[0] = re[0];
  outIm[0] = im[0];
  for (let f = 1; f <= keep; f++) {
    outRe[f] = re[f];
    outIm[f] = im[f];
    outRe[m - f] = re[n - f];
    outIm[m - f] = im[n - f];
  }
  if (m % 2 === 0) {
    outRe[half] = (re[half] + re[n - half]) / Math.SQRT2;
    outIm[half] = (im[half] + im[n - half]) / Math.SQRT2;
  }
  fft(outRe, outIm, true);
  const scale = 1 / Math.sqrt(n * m); // forward 1/√N, inverse 1/√M
  for (let i = 0; i < m; i++) dst[dstOffset + i * dstStride] = outRe[i] * scale;
}

function checkArgs(x: Float32Array, channels: number, height: number, width: number, factor: number): void {
  for (const [name, v] of [
    ['channels', channels],
    ['height', height],
    ['width', width],
    ['factor', factor],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) invalid('a positive integer', name, v);
  }
  if (x.length !== channels * height * width) invalid(`${channels * height * width} values`, 'x', x);
  if (height % factor !== 0) invalid(`a multiple of ${factor}`, 'height', height);
  if (width % factor !== 0) invalid(`a multiple of ${factor}`, 'width', width);
}

function orthonormalDownsample(
  x: Float32Array,
  channels: number,
  height: number,
  width: number,
  factor: number,
  gain: number,
): Float32Array {
  checkArgs(x, channels, height, width, factor);
  if (factor === 1) return gain === 1 ? x.slice() : x.map((v) => v * gain);
  const h2 = height / factor;
  const w2 = width / factor;
  const n = Math.max(height, width);
  const re = new Float64Array(n),
    im = new Float64Array(n);
  const src = Float64Array.from(x);
  const rows = new Float64Array(channels * height * w2);
  const out = new Float64Array(channels * h2 * w2);
  const buffers = (len: number, m: number) =>
    [re.subarray(0, len), im.subarray(0, len), new Float64Array(m), new Float64Array(m)] as const;
  const [rw, iw, orw, oiw] = buffers(width, w2);
  for (let r = 0; r < channels * height; r++)
    resampleLine(src, r * width, 1, width, rows, r * w2, 1, w2, rw, iw, orw, oiw);
  const [rh, ih, orh, oih] = buffers(height, h2);
  for (let c = 0; c < channels; c++) {
    for (let col = 0; col < w2; col++) {
      resampleLine(rows, c * height * w2 + col, w2, height, out, c * h2 * w2 + col, w2, h2, rh, ih, orh, oih);
    }
  }
  const result = new Float32Array(out.length);
  for (let i = 0; i < out.length; i++) result[i] = out[i] * gain;
  return result;
}

/** D: sinc low-pass + decimation by `factor` on both axes, mean-preserving. x: [C, H, W] -> [C, H/k, W/k]. */
export function sincDownsample(
  x: Float32Array,
  channels: number,
  height: number,
  width: number,
  factor: number,
): Float32Array {
  return orthonormalDownsample(x, channels, height, width, factor, 1 / factor);
}

/** Variance-preserving sinc downsampling for noise: white N(0,1) in, white N(0,1) out. */
export function sincDownsampleNoise(
  x: Float32Array,
  channels: number,
  height: number,
  width: number,
  factor: number,
): Float32Array {
  return orthonormalDownsample(x, channels, height, width, factor, 1);
}

/** The lower-scale state from the top-scale state z = αx + σε: D(z)/sqrt(α² + σ²/k²). */
export function lowerScaleState(
  z: Float32Array,
  channels: number,
  height: number,
  width: number,
  factor: number,
  alpha: number,
  sigma: number,
): Float32Array {
  if (!(alpha >= 0) || !(sigma >= 0) || alpha + sigma === 0)
    invalid('alpha, sigma >= 0, not both 0', 'alpha/sigma', `${alpha}/${sigma}`);
  const d = sincDownsample(z, channels, height, width, factor);
  const s = 1 / Math.sqrt(alpha * alpha + (sigma * sigma) / (factor * factor));
  for (let i = 0; i < d.length; i++) d[i] *= s;
  return d;
}

/** (α', σ') of the lower scale that lowerScaleState produces, for checks and schedules. */
export function lowerScaleAlphaSigma(alpha: number, sigma: number, factor: number): { alpha: number; sigma: number } {
  const s = Math.sqrt(alpha * alpha + (sigma * sigma) / (factor * factor));
  return { alpha: alpha / s, sigma: sigma / factor / s };
}
