// A small complex FFT for the sinc resampling of noise: iterative radix-2 for power-of-two lengths and a
// direct DFT (O(n^2), twiddles cached per length) for any other length. Unnormalised: forward uses
// e^{-2πi fn/N}, inverse e^{+2πi fn/N}; callers scale.

const twiddleCache = new Map<number, { cos: Float64Array; sin: Float64Array }>();

function twiddles(n: number): { cos: Float64Array; sin: Float64Array } {
  let t = twiddleCache.get(n);
  if (!t) {
    const cos = new Float64Array(n);
    const sin = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      cos[i] = Math.cos((2 * Math.PI * i) / n);
      sin[i] = Math.sin((2 * Math.PI * i) / n);
    }
    t = { cos, sin };
    if (twiddleCache.size > 64) twiddleCache.clear();
    twiddleCache.set(n, t);
  }
  return t;
}

/** In-place complex FFT of (re, im), length n = re.length; inverse flips the exponent sign. */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  const n = re.length;
  if (im.length !== n) throw new RangeError('fft: re and im lengths differ');
  if (n <= 1) return;
  const sign = inverse ? 1 : -1;
  const { cos, sin } = twiddles(n);
  if ((n & (n - 1)) !== 0) {
    const outRe = new Float64Array(n);
    const outIm = new Float64Array(n);
    for (let f = 0; f < n; f++) {
      let sr = 0;
      let si = 0;
      for (let k = 0, idx = 0; k < n; k++, idx = (idx + f) % n) {
        const c = cos[idx];
        const s = sign * sin[idx];
        sr += re[k] * c - im[k] * s;
        si += re[k] * s + im[k] * c;
      }
      outRe[f] = sr;
      outIm[f] = si;
    }
    re.set(outRe);
    im.set(outIm);
    return;
  }
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const half = len >> 1;
    const step = n / len;
    for (let start = 0; start < n; start += len) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step];
        const wi = sign * sin[k * step];
        const a = start + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}
