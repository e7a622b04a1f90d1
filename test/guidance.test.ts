import { readFileSync } from 'node:fs';
import test from 'ava';
import { cfg, cfgWithMap } from '../lib/guidance/cfg.js';
import { rescaleGuidance } from '../lib/guidance/rescale.js';
import {
  bilinearResize,
  GAUSS3,
  gaussianSmooth3,
  nearestIndex,
  type ScfgLayerAttention,
  scfg,
  scfgAttentionMaps,
  scfgMasks,
  scfgRate,
} from '../lib/guidance/scfg.js';
import { scheduledWeight, scheduledWeights } from '../lib/guidance/schedule.js';
import { TorchGenerator } from '../lib/noise/torch-rng.js';

const gen = new TorchGenerator(123);
const randn = (n: number) => gen.randn([Math.max(n, 16)]).slice(0, n);
const sameBits = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  new Uint32Array(a.buffer, a.byteOffset, a.length).every(
    (v, i) => v === new Uint32Array(b.buffer, b.byteOffset, b.length)[i],
  );
function std(x: Float32Array): number {
  const m = x.reduce((s, v) => s + v, 0) / x.length;
  return Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / (x.length - 1));
}

test('cfg: formula, w = 1 gives ε_c, w = 0 gives ε_u, a constant map equals the scalar weight', (t) => {
  const u = randn(64),
    c = randn(64);
  const g = cfg(u, c, 7.5);
  for (let i = 0; i < 64; i++) t.true(Math.abs(g[i] - (u[i] + 7.5 * (c[i] - u[i]))) < 1e-5);
  t.true(
    sameBits(
      cfg(u, c, 1),
      c.map((v, i) => u[i] + Math.fround(v - u[i])),
    ),
  );
  t.true(sameBits(cfg(u, c, 0), u));
  t.true(sameBits(cfgWithMap(u, c, 7.5, new Float32Array(16).fill(1)), g));
  const map = Float32Array.from({ length: 16 }, (_, i) => (i % 2 ? 2 : 0.5));
  const gm = cfgWithMap(u, c, 3, map);
  for (let i = 0; i < 64; i++) t.true(Math.abs(gm[i] - (u[i] + 3 * map[i % 16] * (c[i] - u[i]))) < 1e-5);
  t.throws(() => cfgWithMap(u, c, 3, new Float32Array(7)), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => cfg(u, c.subarray(1), 3), { code: 'ERR_INVALID_ARGUMENT' } as never);
});

test('schedules: constant = CFG weight; linear/cosine average w, rise monotonically, N = 1 gives w', (t) => {
  t.deepEqual(scheduledWeights(7.5, 10, 'constant'), Array(10).fill(7.5));
  const u = randn(32),
    c = randn(32);
  t.true(sameBits(cfg(u, c, scheduledWeight(7.5, 3, 10, 'constant')), cfg(u, c, 7.5)));
  for (const kind of ['linear', 'cosine'] as const) {
    for (const n of [2, 3, 10, 25, 50]) {
      const w = scheduledWeights(7.5, n, kind);
      const mean = w.reduce((a, b) => a + b, 0) / n;
      t.true(Math.abs(mean - 7.5) < 1e-9, `${kind} N=${n}: mean ${mean}`);
      for (let i = 1; i < n; i++) t.true(w[i] >= w[i - 1], `${kind} N=${n} step ${i}`);
      t.is(w[0], 0);
      t.true(Math.abs(w[n - 1] - 15) < 1e-12);
    }
    t.deepEqual(scheduledWeights(7.5, 1, kind), [7.5]);
  }
  t.true(Math.abs(scheduledWeight(4, 1, 3, 'cosine') - 4) < 1e-12);
  t.throws(() => scheduledWeight(7.5, 10, 10, 'linear'), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => scheduledWeight(7.5, 0, 10, 'quadratic' as never), { code: 'ERR_INVALID_ARGUMENT' } as never);
});

test('rescale: φ = 0 is CFG, φ = 1 matches std(ε_c) per sample, in between is the blend', (t) => {
  const u = randn(2 * 4 * 8 * 8),
    c = randn(2 * 4 * 8 * 8).map((v, i) => v * (i < 256 ? 0.5 : 2));
  const g = cfg(u, c, 7.5);
  t.true(sameBits(rescaleGuidance(g, c, 0, 2), g));
  const r1 = rescaleGuidance(g, c, 1, 2);
  for (let b = 0; b < 2; b++) {
    const s = std(r1.subarray(b * 256, (b + 1) * 256));
    const sc = std(c.subarray(b * 256, (b + 1) * 256));
    t.true(Math.abs(s / sc - 1) < 1e-5, `sample ${b}: ${s} vs ${sc}`);
  }
  t.false(Math.abs(std(g.subarray(0, 256)) / std(c.subarray(0, 256)) - 1) < 0.1, 'CFG alone has a different std');
  const r07 = rescaleGuidance(g, c, 0.7, 2);
  for (let i = 0; i < g.length; i++) t.true(Math.abs(r07[i] - (0.7 * r1[i] + 0.3 * g[i])) < 1e-5);
  t.throws(() => rescaleGuidance(g, c, 1.5), { code: 'ERR_INVALID_ARGUMENT' } as never);
});

test('bilinear x2 (align_corners=False) matches torch F.interpolate; nearest indices; Gaussian kernel', (t) => {
  const up = bilinearResize(Float64Array.from([1, 2, 3, 4]), 1, 2, 2, 4, 4);
  t.deepEqual(Array.from(up), [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
  t.deepEqual(Array.from(nearestIndex(3, 12)), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
  t.deepEqual(
    GAUSS3.map((v) => Math.round(v * 1e4) / 1e4),
    [0.2119, 0.5761, 0.2119],
  );
  const delta = new Float64Array(25);
  delta[12] = 1;
  const sm = gaussianSmooth3(delta, 1, 5, 5);
  t.true(Math.abs(sm[12] - GAUSS3[1] ** 2) < 1e-15 && Math.abs(sm[7] - GAUSS3[0] * GAUSS3[1]) < 1e-15);
  // reflect padding (torch 'reflect', edge not repeated): padded index -1 reads index 1, so a delta in the
  // centre of a 3x3 map reaches the corner four times and a delta in the corner is never mirrored.
  const centre = new Float64Array(9);
  centre[4] = 1;
  t.true(Math.abs(gaussianSmooth3(centre, 1, 3, 3)[0] - 4 * GAUSS3[0] ** 2) < 1e-15);
  const corner = new Float64Array(9);
  corner[0] = 1;
  const sc = gaussianSmooth3(corner, 1, 3, 3);
  t.true(Math.abs(sc[0] - GAUSS3[1] ** 2) < 1e-15 && Math.abs(sc[1] - GAUSS3[0] * GAUSS3[1]) < 1e-15);
  t.true(
    Float32Array.from(gaussianSmooth3(new Float64Array(12).fill(1.7), 1, 3, 4)).every((v) => v === Math.fround(1.7)),
  );
});

function softmaxRows(logits: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity,
      s = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, logits[r * cols + c]);
    for (let c = 0; c < cols; c++) s += Math.exp(logits[r * cols + c] - m);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(logits[r * cols + c] - m) / s;
  }
  return out;
}

function randomLayer(h: number, w: number, tokens: number, sharp = 3): ScfgLayerAttention {
  const hw = h * w;
  const mk = (rows: number, cols: number) =>
    softmaxRows(
      randn(rows * cols).map((v) => v * sharp),
      rows,
      cols,
    );
  return {
    height: h,
    width: w,
    selfUncond: mk(hw, hw),
    selfCond: mk(hw, hw),
    crossUncond: mk(hw, tokens),
    crossCond: mk(hw, tokens),
  };
}

test('S-CFG: one token owning every pixel, all foreground => rate ≡ 1 and exactly CFG', (t) => {
  const C = 4,
    H = 12,
    W = 20,
    hw = H * W;
  const u = randn(C * hw),
    c = randn(C * hw);
  const masks = { tokenOfPixel: new Int32Array(hw).fill(7), foreground: new Uint8Array(hw).fill(1) };
  const r = scfgRate(masks, u, c, C, H, W, 7.5);
  t.true(
    r.rate.every((v) => v === 1),
    `rate range ${Math.min(...r.rate)}..${Math.max(...r.rate)}`,
  );
  t.true(sameBits(cfgWithMap(u, c, 7.5, r.rate), cfg(u, c, 7.5)));
});

test('S-CFG attention maps: Â = (A + 3A²)/4 chain equals a direct computation', (t) => {
  const T = 5,
    h = 4,
    w = 6,
    hw = h * w;
  const layer = randomLayer(h, w, T);
  const { tokenMaps, fgPair } = scfgAttentionMaps([layer], T);
  const refine = (A: Float32Array, Cx: Float32Array) => {
    const A2 = new Float64Array(hw * hw);
    for (let i = 0; i < hw; i++)
      for (let k = 0; k < hw; k++) for (let j = 0; j < hw; j++) A2[i * hw + j] += A[i * hw + k] * A[k * hw + j];
    const maps = new Float64Array(T * hw);
    for (let i = 0; i < hw; i++)
      for (let k = 0; k < T; k++) {
        let s = 0;
        for (let j = 0; j < hw; j++) s += ((A[i * hw + j] + 3 * A2[i * hw + j]) / 4) * Cx[j * T + k];
        maps[k * hw + i] = s;
      }
    return gaussianSmooth3(maps, T, h, w);
  };
  const cond = refine(layer.selfCond, layer.crossCond);
  let err = 0;
  for (let k = 0; k < T; k++) {
    const m = cond.subarray(k * hw, (k + 1) * hw).reduce((a, b) => a + b, 0) / hw + 1e-8;
    for (let p = 0; p < hw; p++) err = Math.max(err, Math.abs(tokenMaps[k * hw + p] - cond[k * hw + p] / m));
  }
  t.true(err < 1e-12, `token maps error ${err}`);
  const unc = refine(layer.selfUncond, layer.crossUncond);
  const bos = unc.subarray(0, hw),
    rest = new Float64Array(hw);
  for (let k = 1; k < T; k++) for (let p = 0; p < hw; p++) rest[p] += unc[k * hw + p];
  const mb = bos.reduce((a, b) => a + b, 0) / hw,
    mr = rest.reduce((a, b) => a + b, 0) / hw;
  for (let p = 0; p < hw; p++) {
    t.true(Math.abs(fgPair[p] - bos[p] / mb) < 1e-12 && Math.abs(fgPair[hw + p] - rest[p] / mr) < 1e-12);
  }
});

function twoLevelInput(H: number, W: number, T: number, seed: number) {
  void seed;
  const layers = [randomLayer(H / 4, W / 4, T), randomLayer(H / 4, W / 4, T), randomLayer(H / 8, W / 8, T)];
  const C = 4;
  return {
    layers,
    epsUncond: randn(C * H * W),
    epsCond: randn(C * H * W),
    channels: C,
    height: H,
    width: W,
    scale: 7.5,
    tokens: T,
  };
}

test('S-CFG: every pixel owns exactly its argmax token; before clamping mean over M_k of rate·n = m_fg', (t) => {
  const T = 9,
    H = 24,
    W = 40;
  const input = twoLevelInput(H, W, T, 1);
  const res = scfg(input);
  const { tokenMaps, fgPair, height: mh, width: mw } = scfgAttentionMaps(input.layers, T);
  t.deepEqual([mh, mw], [6, 10]);
  const ri = nearestIndex(mh, H),
    ci = nearestIndex(mw, W);
  let fgCount = 0,
    fgSum = 0;
  const owners = new Set<number>();
  for (let r = 0; r < H; r++)
    for (let c = 0; c < W; c++) {
      const q = ri[r] * mw + ci[c],
        p = r * W + c;
      const k = res.tokenOfPixel[p];
      t.true(k >= 0 && k < T);
      owners.add(k);
      for (let j = 0; j < T; j++) t.true(tokenMaps[j * mh * mw + q] <= tokenMaps[k * mh * mw + q]);
      t.is(res.foreground[p], fgPair[q] >= fgPair[mh * mw + q] ? 0 : 1);
      if (res.foreground[p]) {
        fgCount++;
        fgSum += res.deltaNorm[p];
      }
    }
  t.true(fgCount > 0 && fgCount < H * W, 'a foreground and a background exist');
  t.true(owners.size > 1, 'several tokens own pixels');
  const mFg = fgSum / fgCount;
  for (const k of owners) {
    let s = 0,
      n = 0;
    for (let p = 0; p < H * W; p++)
      if (res.tokenOfPixel[p] === k) {
        s += res.rateUnclamped[p] * res.deltaNorm[p];
        n++;
      }
    t.true(Math.abs(s / n - mFg) < 1e-6 * mFg, `token ${k}: ${s / n} vs ${mFg}`);
  }
  t.true(
    res.rate.every((v) => v >= 0.8 - 1e-6 && v <= 2 + 1e-6),
    'clamped to [0.8, min(3, 15/7.5)] before smoothing',
  );
  for (let i = 0; i < res.guided.length; i++) {
    const p = i % (H * W);
    const want = input.epsUncond[i] + 7.5 * res.rate[p] * (input.epsCond[i] - input.epsUncond[i]);
    t.true(Math.abs(res.guided[i] - want) < 1e-4);
  }
});

function transposeLayer(l: ScfgLayerAttention, T: number): ScfgLayerAttention {
  const { height: h, width: w } = l,
    hw = h * w;
  const perm = (i: number) => (i % w) * h + Math.floor(i / w); // (r, c) -> (c, r) in a w×h map
  const sq = (a: Float32Array) => {
    const o = new Float32Array(hw * hw);
    for (let i = 0; i < hw; i++) for (let j = 0; j < hw; j++) o[perm(i) * hw + perm(j)] = a[i * hw + j];
    return o;
  };
  const cr = (a: Float32Array) => {
    const o = new Float32Array(hw * T);
    for (let i = 0; i < hw; i++) for (let k = 0; k < T; k++) o[perm(i) * T + k] = a[i * T + k];
    return o;
  };
  return {
    height: w,
    width: h,
    selfUncond: sq(l.selfUncond),
    selfCond: sq(l.selfCond),
    crossUncond: cr(l.crossUncond),
    crossCond: cr(l.crossCond),
  };
}

test('S-CFG on non-square latents: transposing every input transposes the result', (t) => {
  const T = 6,
    H = 16,
    W = 32;
  const input = twoLevelInput(H, W, T, 2);
  const res = scfg(input);
  const tr = (x: Float32Array, planes: number, h: number, w: number) => {
    const o = new Float32Array(x.length);
    for (let p = 0; p < planes; p++)
      for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) o[p * h * w + c * h + r] = x[p * h * w + r * w + c];
    return o;
  };
  const resT = scfg({
    ...input,
    height: W,
    width: H,
    layers: input.layers.map((l) => transposeLayer(l, T)),
    epsUncond: tr(input.epsUncond, 4, H, W),
    epsCond: tr(input.epsCond, 4, H, W),
  });
  t.deepEqual(Array.from(resT.tokenOfPixel), Array.from(tr(Float32Array.from(res.tokenOfPixel), 1, H, W)));
  t.deepEqual(Array.from(resT.foreground), Array.from(tr(Float32Array.from(res.foreground), 1, H, W)));
  const rt = tr(res.rate, 1, H, W);
  let err = 0;
  for (let i = 0; i < rt.length; i++) err = Math.max(err, Math.abs(rt[i] - resT.rate[i]));
  t.true(err < 1e-6, `rate error ${err}`);
  t.false(
    res.rate.every((v) => v === res.rate[0]),
    'the rate map is not trivially constant',
  );
});

test('S-CFG validates its inputs', (t) => {
  const input = twoLevelInput(16, 16, 4, 3);
  t.throws(() => scfg({ ...input, epsCond: input.epsCond.subarray(1) }), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => scfg({ ...input, layers: [] }), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => scfg({ ...input, layers: [{ ...input.layers[0], crossCond: new Float32Array(3) }] }), {
    code: 'ERR_INVALID_ARGUMENT',
  } as never);
  t.throws(
    () =>
      scfgMasks(input.layers, 16, 16, 4) &&
      scfgRate(
        { tokenOfPixel: new Int32Array(256).fill(9), foreground: new Uint8Array(256) },
        input.epsUncond,
        input.epsCond,
        4,
        16,
        16,
        7.5,
        4,
      ),
    { code: 'ERR_INVALID_ARGUMENT' } as never,
  );
});

test('S-CFG matches the official code restated in torch (test/data, square latents)', (t) => {
  // tools/make-scfg-reference.py: get_mask (R = 4) + the rate of sd/sd.py, float32 torch 1.13.1.
  const data = JSON.parse(readFileSync(new URL('./data/scfg_reference.json', import.meta.url), 'utf8')) as {
    cases: {
      latent: number;
      tokens: number;
      scale: number;
      epsUncond: string;
      epsCond: string;
      tokenOfPixel: string;
      foreground: string;
      rate: string;
      guided: string;
      layers: { size: number; self: string[]; cross: string[] }[];
    }[];
  };
  const f32 = (b64: string) => {
    const buf = Buffer.from(b64, 'base64');
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  };
  t.is(data.cases.length, 2);
  for (const c of data.cases) {
    const res = scfg({
      layers: c.layers.map((l) => ({
        height: l.size,
        width: l.size,
        selfUncond: f32(l.self[0]),
        selfCond: f32(l.self[1]),
        crossUncond: f32(l.cross[0]),
        crossCond: f32(l.cross[1]),
      })),
      epsUncond: f32(c.epsUncond),
      epsCond: f32(c.epsCond),
      channels: 4,
      height: c.latent,
      width: c.latent,
      scale: c.scale,
      tokens: c.tokens,
    });
    t.deepEqual(Array.from(res.tokenOfPixel), Array.from(f32(c.tokenOfPixel)));
    t.deepEqual(Array.from(res.foreground), Array.from(f32(c.foreground)));
    const rate = f32(c.rate),
      guided = f32(c.guided);
    let er = 0,
      eg = 0;
    for (let i = 0; i < rate.length; i++) er = Math.max(er, Math.abs(rate[i] - res.rate[i]));
    for (let i = 0; i < guided.length; i++) eg = Math.max(eg, Math.abs(guided[i] - res.guided[i]));
    t.true(er < 1e-5, `rate max error ${er}`);
    t.true(eg < 1e-4, `guided max error ${eg}`);
    t.false(
      rate.every((v) => v === rate[0]),
      'the reference rate map is not constant',
    );
  }
});

test('CFG is bit-exact and rescale within 2e-6 of diffusers in float32 torch (test/data)', (t) => {
  const data = JSON.parse(readFileSync(new URL('./data/cfg_reference.json', import.meta.url), 'utf8')) as {
    uncond: string;
    cond: string;
    cases: { scale: number; rescale: number; cfg: string; rescaled: string }[];
  };
  const f32 = (b64: string) => {
    const buf = Buffer.from(b64, 'base64');
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  };
  const u = f32(data.uncond),
    c = f32(data.cond);
  for (const k of data.cases) {
    const g = cfg(u, c, k.scale);
    t.true(sameBits(g, f32(k.cfg)), `cfg w=${k.scale}`);
    const r = rescaleGuidance(g, c, k.rescale, 2);
    const ref = f32(k.rescaled);
    let err = 0;
    for (let i = 0; i < r.length; i++) err = Math.max(err, Math.abs(r[i] - ref[i]));
    t.true(err < 2e-6, `rescale φ=${k.rescale}: ${err}`); // values up to ~20: a few float32 ulps
    if (k.rescale === 0) t.true(sameBits(r, ref));
  }
});
