import test from 'ava';
import { fft } from '../lib/noise/fft.js';
import { lowerScaleAlphaSigma, lowerScaleState, sincDownsample, sincDownsampleNoise } from '../lib/noise/multiscale.js';
import { TorchGenerator } from '../lib/noise/torch-rng.js';

function naiveDft(re: Float64Array, im: Float64Array, inverse: boolean): [Float64Array, Float64Array] {
  const n = re.length,
    sign = inverse ? 1 : -1;
  const oR = new Float64Array(n),
    oI = new Float64Array(n);
  for (let f = 0; f < n; f++) {
    for (let k = 0; k < n; k++) {
      const a = (sign * 2 * Math.PI * f * k) / n;
      oR[f] += re[k] * Math.cos(a) - im[k] * Math.sin(a);
      oI[f] += re[k] * Math.sin(a) + im[k] * Math.cos(a);
    }
  }
  return [oR, oI];
}

test('fft matches a direct DFT for radix-2 and other lengths, both directions', (t) => {
  const gen = new TorchGenerator(1);
  for (const n of [1, 2, 8, 64, 12, 15]) {
    for (const inverse of [false, true]) {
      const re = Float64Array.from(gen.randn([n + 16]).subarray(0, n));
      const im = Float64Array.from(gen.randn([n + 16]).subarray(0, n));
      const [eR, eI] = naiveDft(re, im, inverse);
      fft(re, im, inverse);
      for (let i = 0; i < n; i++) {
        t.true(Math.abs(re[i] - eR[i]) < 1e-9 && Math.abs(im[i] - eI[i]) < 1e-9, `n=${n} bin ${i}`);
      }
    }
  }
});

function stats(x: Float32Array, h: number, w: number) {
  let s = 0,
    s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const mean = s / x.length;
  const variance = s2 / x.length - mean * mean;
  let hx = 0,
    nx = 0,
    vy = 0,
    ny = 0;
  const planes = x.length / (h * w);
  for (let p = 0; p < planes; p++) {
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const i = p * h * w + r * w + c;
        if (c + 1 < w) {
          hx += (x[i] - mean) * (x[i + 1] - mean);
          nx++;
        }
        if (r + 1 < h) {
          vy += (x[i] - mean) * (x[i + w] - mean);
          ny++;
        }
      }
    }
  }
  return { mean, variance, lagX: hx / nx / variance, lagY: vy / ny / variance };
}

// 4 x 64 x 64 = 16384 output samples: the standard error of the variance is sqrt(2/16384) = 0.011 and of
// a lag-1 correlation 1/sqrt(16384) = 0.008, so the bounds below are about 4-5 standard errors.
test('white N(0,1) noise 256 -> 64 stays white N(0,1): variance ~1, lag-1 correlation ~0', (t) => {
  const noise = new TorchGenerator(0).randn([4, 256, 256]);
  const lo = sincDownsampleNoise(noise, 4, 256, 256, 4);
  t.is(lo.length, 4 * 64 * 64);
  const s = stats(lo, 64, 64);
  t.true(Math.abs(s.mean) < 0.04, `mean ${s.mean}`);
  t.true(Math.abs(s.variance - 1) < 0.05, `variance ${s.variance}`);
  t.true(Math.abs(s.lagX) < 0.04, `lag-1 x ${s.lagX}`);
  t.true(Math.abs(s.lagY) < 0.04, `lag-1 y ${s.lagY}`);
  // The mean-preserving D shrinks white noise by 1/k^2 in variance.
  const d = stats(sincDownsample(noise, 4, 256, 256, 4), 64, 64);
  t.true(Math.abs(d.variance * 16 - s.variance) < 1e-4, `D variance ${d.variance}`);
});

test('non-square, non-power-of-two noise (odd output length) also stays unit variance', (t) => {
  const noise = new TorchGenerator(5).randn([8, 90, 120]);
  const lo = sincDownsampleNoise(noise, 8, 90, 120, 2); // 45 x 60: odd rows, DFT path
  const s = stats(lo, 45, 60);
  t.true(Math.abs(s.variance - 1) < 0.05, `variance ${s.variance}`);
  t.true(Math.abs(s.lagX) < 0.04 && Math.abs(s.lagY) < 0.04, `lags ${s.lagX} ${s.lagY}`);
});

test('factor 1 is the identity (a copy)', (t) => {
  const x = new TorchGenerator(2).randn([2, 8, 12]);
  const y = sincDownsample(x, 2, 8, 12, 1);
  t.not(y, x);
  t.deepEqual(y, x);
  t.deepEqual(sincDownsampleNoise(x, 2, 8, 12, 1), x);
});

function bandLimited(c: number, h: number, w: number, m: number, mw: number): Float32Array {
  const x = new Float32Array(c * h * w);
  const gen = new TorchGenerator(9);
  const amps = gen.randn([c * 6 + 16]);
  for (let ch = 0; ch < c; ch++) {
    const terms: [number, number, number, number][] = [];
    for (let k = 0; k < 3; k++) {
      const fy = Math.floor(Math.abs(amps[ch * 6 + k] * 7)) % Math.ceil(m / 2); // |f| < M/2
      const fx = Math.floor(Math.abs(amps[ch * 6 + k + 3] * 11)) % Math.ceil(mw / 2);
      terms.push([fy, fx, amps[ch * 6 + k], k * 0.7]);
    }
    for (let r = 0; r < h; r++) {
      for (let col = 0; col < w; col++) {
        let v = 0.3;
        for (const [fy, fx, a, ph] of terms) v += a * Math.cos(2 * Math.PI * ((fy * r) / h + (fx * col) / w) + ph);
        x[ch * h * w + r * w + col] = v;
      }
    }
  }
  return x;
}

test('a band-limited input is preserved exactly: D(x)[m] = x[k*m]', (t) => {
  for (const [c, h, w, k] of [
    [3, 64, 32, 4],
    [2, 24, 40, 2],
    [2, 30, 18, 3],
  ]) {
    const x = bandLimited(c, h, w, h / k, w / k);
    const d = sincDownsample(x, c, h, w, k);
    let maxErr = 0;
    for (let ch = 0; ch < c; ch++) {
      for (let r = 0; r < h / k; r++) {
        for (let col = 0; col < w / k; col++) {
          const got = d[ch * (h / k) * (w / k) + r * (w / k) + col];
          maxErr = Math.max(maxErr, Math.abs(got - x[ch * h * w + r * k * w + col * k]));
        }
      }
    }
    t.true(maxErr < 2e-5, `${h}x${w} / ${k}: max error ${maxErr}`);
  }
});

test('a frequency above the new Nyquist is removed', (t) => {
  const h = 16,
    w = 16;
  const x = new Float32Array(h * w);
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) x[r * w + c] = Math.cos((2 * Math.PI * 5 * c) / w);
  const d = sincDownsample(x, 1, h, w, 2); // new Nyquist is 4 cycles
  t.true(d.every((v) => Math.abs(v) < 1e-6));
});

test('state mapping: unit total variance, logSNR shifted by 2 ln k, linear in signal and noise', (t) => {
  const alpha = 0.6,
    sigma = 0.8,
    k = 2;
  const { alpha: a2, sigma: s2 } = lowerScaleAlphaSigma(alpha, sigma, k);
  t.true(Math.abs(a2 * a2 + s2 * s2 - 1) < 1e-12);
  t.true(
    Math.abs(Math.log((a2 * a2) / (s2 * s2)) - (Math.log((alpha * alpha) / (sigma * sigma)) + 2 * Math.log(k))) < 1e-12,
  );
  const c = 2,
    h = 32,
    w = 48;
  const x = bandLimited(c, h, w, h / k, w / k);
  const eps = new TorchGenerator(4).randn([c, h, w]);
  const z = x.map((v, i) => alpha * v + sigma * eps[i]);
  const lo = lowerScaleState(z, c, h, w, k, alpha, sigma);
  const dx = sincDownsample(x, c, h, w, k);
  const ne = sincDownsampleNoise(eps, c, h, w, k);
  let maxErr = 0;
  for (let i = 0; i < lo.length; i++) maxErr = Math.max(maxErr, Math.abs(lo[i] - (a2 * dx[i] + s2 * ne[i])));
  t.true(maxErr < 1e-5, `max error ${maxErr}`);
});

test('validation: sizes must divide, lengths must match', (t) => {
  const x = new Float32Array(2 * 10 * 10);
  t.throws(() => sincDownsample(x, 2, 10, 10, 3), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => sincDownsample(x, 2, 10, 11, 1), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => sincDownsample(x, 2, 10, 10, 0), { code: 'ERR_INVALID_ARGUMENT' } as never);
});

test('the noise operator has orthonormal rows (A Aᵀ = I), which is what makes white noise stay white', (t) => {
  for (const [h, w, k] of [
    [2, 16, 2],
    [3, 12, 3],
    [4, 8, 4],
  ]) {
    const n = h * w,
      m = (h / k) * (w / k);
    const rows: Float32Array[] = [];
    for (let i = 0; i < n; i++) {
      const e = new Float32Array(n);
      e[i] = 1;
      rows.push(sincDownsampleNoise(e, 1, h, w, k)); // column i of A
    }
    let maxErr = 0;
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += rows[i][a] * rows[i][b];
        maxErr = Math.max(maxErr, Math.abs(dot - (a === b ? 1 : 0)));
      }
    }
    t.true(maxErr < 1e-6, `${h}x${w}/${k}: |A Aᵀ - I| = ${maxErr}`);
  }
});
