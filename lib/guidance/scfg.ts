// S-CFG, semantic-aware classifier-free guidance (Shen et al. 2024), following the official code
// (SmilesDZgk/S-CFG, sd/utils.py get_mask and sd/sd.py) as docs/design.md §5.3 specifies, for one sample:
//
// 1. Inputs per selected layer (SD: the 1/4- and 1/8-of-latent levels): head-averaged self-attention
//    probabilities A [hw, hw] and cross-attention probabilities C [hw, T] (T = 77), for the uncond and the
//    cond half of the batch.
// 2. Per layer and half: C' = Â·C with Â = (A + 3A²)/4 (the official code's loop; computed as
//    (AC + 3A(AC))/4, the same product without forming A²), as T maps of h×w; maps of a coarser layer are
//    upsampled bilinearly (align_corners=False, as torch's F.interpolate) to the finest layer's size; each map
//    is smoothed by the 3×3 Gaussian (1-D weights e^-1, 1, e^-1 normalised = 0.2119, 0.5761, 0.2119: the
//    official GaussianSmoothing(sigma=0.5)) with reflect padding.
//    Cond half: every token map divided by its spatial mean + 1e-8, averaged over layers.
//    Uncond half: the pair [C'_0, Σ_{k≥1} C'_k], each divided by its spatial mean, averaged over layers.
// 3. Token masks M_k(p) = 1 where k is the argmax over the T cond maps (first index on ties, so every pixel
//    has exactly one token); foreground fg(p) = 1 − [BOS map ≥ rest map] from the uncond pair. Both are
//    upsampled nearest (torch's rule src = floor(dst·in/out)) to the latent's true h×w.
// 4. n(p) = ‖ε_c(p) − ε_u(p)‖₂ over channels; m_k = Σ n·M_k / (Σ M_k + 1e-8); m_fg likewise over fg;
//    rate_k = m_fg/(m_k + 1e-8) for tokens that own a pixel (else 0); rate(p) = Σ_k rate_k·M_k(p);
//    clamp to [0.8, 3], then to ≤ 15/w; smooth with the same Gaussian (reflect padding).
// 5. ε̂ = ε_u + (w·rate(p))·(ε_c − ε_u).
// Maps are computed in float64; ε̂ in float32.
import { invalid } from '../errors.js';
import { cfgWithMap } from './cfg.js';

export interface ScfgLayerAttention {
  /** This layer's feature-map size (hw = height·width tokens). */
  height: number;
  width: number;
  /** Head-averaged self-attention probabilities [hw, hw] (row = query), uncond and cond half. */
  selfUncond: Float32Array;
  selfCond: Float32Array;
  /** Head-averaged cross-attention probabilities [hw, T], uncond and cond half. */
  crossUncond: Float32Array;
  crossCond: Float32Array;
}

export interface ScfgInput {
  layers: ScfgLayerAttention[];
  /** ε (or v) predictions [C, H, W] of the uncond and cond halves. */
  epsUncond: Float32Array;
  epsCond: Float32Array;
  channels: number;
  height: number;
  width: number;
  /** Guidance weight w. */
  scale: number;
  /** Text tokens per cross-attention row (default 77). */
  tokens?: number;
}

export interface ScfgResult {
  /** ε_u + w·rate(p)·(ε_c − ε_u), [C, H, W]. */
  guided: Float32Array;
  /** Final per-pixel rate (after clamping and smoothing), [H, W]. */
  rate: Float32Array;
  /** Rate before clamping and smoothing, [H, W]. */
  rateUnclamped: Float64Array;
  /** Token index owning each latent pixel, [H, W]. */
  tokenOfPixel: Int32Array;
  /** Foreground mask at latent size, [H, W] (0 or 1). */
  foreground: Uint8Array;
  /** ‖ε_c − ε_u‖ per pixel, [H, W]. */
  deltaNorm: Float64Array;
  /** Per-token rate_k (0 for tokens owning no pixel), [T]. */
  tokenRates: Float64Array;
}

const E1 = Math.exp(-1);
/** 1-D Gaussian weights of the official GaussianSmoothing(kernel 3, sigma 0.5), normalised. */
export const GAUSS3 = [E1 / (1 + 2 * E1), 1 / (1 + 2 * E1), E1 / (1 + 2 * E1)] as const;

/** 3×3 Gaussian smoothing with reflect padding of `planes` maps [h, w] (in place semantics: returns new). */
export function gaussianSmooth3(x: Float64Array, planes: number, h: number, w: number): Float64Array {
  const out = new Float64Array(x.length);
  const reflect = (i: number, n: number) => (n === 1 ? 0 : i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  for (let p = 0; p < planes; p++) {
    const base = p * h * w;
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        let s = 0;
        for (let dr = -1; dr <= 1; dr++) {
          const rr = reflect(r + dr, h);
          for (let dc = -1; dc <= 1; dc++) {
            s += GAUSS3[dr + 1] * GAUSS3[dc + 1] * x[base + rr * w + reflect(c + dc, w)];
          }
        }
        out[base + r * w + c] = s;
      }
    }
  }
  return out;
}

/** torch F.interpolate(mode='bilinear', align_corners=False) of `planes` maps [h, w] to [oh, ow]. */
export function bilinearResize(
  x: Float64Array,
  planes: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
): Float64Array {
  const out = new Float64Array(planes * oh * ow);
  const src = (d: number, inN: number, outN: number) => {
    const s = Math.max(0, ((d + 0.5) * inN) / outN - 0.5);
    const i0 = Math.min(Math.floor(s), inN - 1);
    const i1 = Math.min(i0 + 1, inN - 1);
    return [i0, i1, s - i0] as const;
  };
  for (let r = 0; r < oh; r++) {
    const [r0, r1, fr] = src(r, h, oh);
    for (let c = 0; c < ow; c++) {
      const [c0, c1, fc] = src(c, w, ow);
      for (let p = 0; p < planes; p++) {
        const b = p * h * w;
        const top = x[b + r0 * w + c0] * (1 - fc) + x[b + r0 * w + c1] * fc;
        const bottom = x[b + r1 * w + c0] * (1 - fc) + x[b + r1 * w + c1] * fc;
        out[p * oh * ow + r * ow + c] = top * (1 - fr) + bottom * fr;
      }
    }
  }
  return out;
}

/** torch F.interpolate(mode='nearest') index map: source index of each of `outN` destinations. */
export function nearestIndex(inN: number, outN: number): Int32Array {
  const idx = new Int32Array(outN);
  for (let d = 0; d < outN; d++) idx[d] = Math.min(Math.floor((d * inN) / outN), inN - 1);
  return idx;
}

/**
 * C' = ((A + 3A²)/4)·C as `t` maps [t, h, w] (token-major) for a column matrix C [hw, t], computed as
 * (AC + 3A(AC))/4: O(hw²·t) instead of the O(hw³) of forming A². Rows of A with zero weight are skipped.
 */
function refinedCrossMaps(selfAttn: Float32Array, cross: Float64Array, hw: number, t: number): Float64Array {
  const ac = new Float64Array(hw * t);
  const aac = new Float64Array(hw * t);
  const product = (src: Float64Array, dst: Float64Array) => {
    for (let i = 0; i < hw; i++) {
      const arow = i * hw;
      const drow = i * t;
      for (let j = 0; j < hw; j++) {
        const a = selfAttn[arow + j];
        if (a === 0) continue;
        const srow = j * t;
        for (let k = 0; k < t; k++) dst[drow + k] += a * src[srow + k];
      }
    }
  };
  product(cross, ac);
  product(ac, aac);
  const maps = new Float64Array(t * hw);
  for (let i = 0; i < hw; i++) for (let k = 0; k < t; k++) maps[k * hw + i] = (ac[i * t + k] + 3 * aac[i * t + k]) / 4;
  return maps;
}

/** Cross-attention rows [hw, T] as float64; with `pair`, only [C_0, Σ_{k≥1} C_k] per row ([hw, 2]). */
function crossColumns(cross: Float32Array, hw: number, t: number, pair: boolean): Float64Array {
  if (!pair) return Float64Array.from(cross);
  const out = new Float64Array(hw * 2);
  for (let i = 0; i < hw; i++) {
    let rest = 0;
    for (let k = 1; k < t; k++) rest += cross[i * t + k];
    out[2 * i] = cross[i * t];
    out[2 * i + 1] = rest;
  }
  return out;
}

function spatialMean(x: Float64Array, offset: number, n: number): number {
  let s = 0;
  for (let i = offset; i < offset + n; i++) s += x[i];
  return s / n;
}

function validate(input: ScfgInput, t: number): void {
  const { layers, channels, height, width } = input;
  if (!Array.isArray(layers) || layers.length === 0) invalid('at least one attention layer', 'layers', layers);
  for (const [name, v] of [
    ['channels', channels],
    ['height', height],
    ['width', width],
    ['tokens', t],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) invalid('a positive integer', name, v);
  }
  const n = channels * height * width;
  if (input.epsUncond.length !== n) invalid(`${n} values`, 'epsUncond', input.epsUncond);
  if (input.epsCond.length !== n) invalid(`${n} values`, 'epsCond', input.epsCond);
  if (!Number.isFinite(input.scale) || input.scale < 0) invalid('a non-negative number', 'scale', input.scale);
  layers.forEach((l, i) => {
    if (!Number.isInteger(l.height) || !Number.isInteger(l.width) || l.height < 1 || l.width < 1) {
      invalid('positive integer sizes', `layers[${i}].height/width`, `${l.height}x${l.width}`);
    }
    const hw = l.height * l.width;
    for (const key of ['selfUncond', 'selfCond'] as const) {
      if (l[key]?.length !== hw * hw) invalid(`${hw * hw} values`, `layers[${i}].${key}`, l[key]);
    }
    for (const key of ['crossUncond', 'crossCond'] as const) {
      if (l[key]?.length !== hw * t) invalid(`${hw * t} values`, `layers[${i}].${key}`, l[key]);
    }
  });
}

/** Token maps (cond, [T, mh, mw]) and foreground pair (uncond, [2, mh, mw]) averaged over the layers. */
export function scfgAttentionMaps(layers: ScfgLayerAttention[], tokens = 77) {
  const finest = layers.reduce((a, l) => (l.height * l.width > a.height * a.width ? l : a), layers[0]);
  const mh = finest.height,
    mw = finest.width,
    mhw = mh * mw;
  const tokenMaps = new Float64Array(tokens * mhw);
  const fgPair = new Float64Array(2 * mhw);
  // The uncond half only needs the BOS map and the sum of the others: every step after the cross-attention
  // (Â·, bilinear resize, smoothing) is linear, so it runs on those 2 columns instead of all T.
  const prepare = (selfAttn: Float32Array, cross: Float32Array, l: ScfgLayerAttention, pair: boolean) => {
    const cols = pair ? 2 : tokens;
    let maps = refinedCrossMaps(
      selfAttn,
      crossColumns(cross, l.height * l.width, tokens, pair),
      l.height * l.width,
      cols,
    );
    if (l.height !== mh || l.width !== mw) maps = bilinearResize(maps, cols, l.height, l.width, mh, mw);
    return gaussianSmooth3(maps, cols, mh, mw);
  };
  for (const l of layers) {
    const cond = prepare(l.selfCond, l.crossCond, l, false);
    for (let k = 0; k < tokens; k++) {
      const m = spatialMean(cond, k * mhw, mhw) + 1e-8;
      for (let p = 0; p < mhw; p++) tokenMaps[k * mhw + p] += cond[k * mhw + p] / m / layers.length;
    }
    const unc = prepare(l.selfUncond, l.crossUncond, l, true);
    const m0 = spatialMean(unc, 0, mhw);
    const m1 = spatialMean(unc, mhw, mhw);
    for (let p = 0; p < mhw; p++) {
      fgPair[p] += unc[p] / m0 / layers.length;
      fgPair[mhw + p] += unc[mhw + p] / m1 / layers.length;
    }
  }
  return { tokenMaps, fgPair, height: mh, width: mw };
}

export interface ScfgMasks {
  /** Token index owning each latent pixel (argmax, first on ties), [H, W]. */
  tokenOfPixel: Int32Array;
  /** Foreground at latent size, [H, W] (0 or 1). */
  foreground: Uint8Array;
}

/** Step 3: token and foreground masks at the latent's h×w from the layers' attention. */
export function scfgMasks(layers: ScfgLayerAttention[], height: number, width: number, tokens = 77): ScfgMasks {
  const { tokenMaps, fgPair, height: mh, width: mw } = scfgAttentionMaps(layers, tokens);
  const mhw = mh * mw;
  const ri = nearestIndex(mh, height),
    ci = nearestIndex(mw, width);
  const tokenOfPixel = new Int32Array(height * width);
  const foreground = new Uint8Array(height * width);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const q = ri[r] * mw + ci[c];
      let best = 0;
      for (let k = 1; k < tokens; k++) if (tokenMaps[k * mhw + q] > tokenMaps[best * mhw + q]) best = k;
      tokenOfPixel[r * width + c] = best;
      foreground[r * width + c] = fgPair[q] >= fgPair[mhw + q] ? 0 : 1;
    }
  }
  return { tokenOfPixel, foreground };
}

export interface ScfgRate {
  rate: Float32Array;
  rateUnclamped: Float64Array;
  deltaNorm: Float64Array;
  tokenRates: Float64Array;
}

/**
 * Steps 4-5 from given masks: the per-pixel rate. When one token owns every pixel and all of them are
 * foreground, rate_k = m/(m + 1e-8), which is exactly 1 in float32 once m > 0.34.
 */
export function scfgRate(
  masks: ScfgMasks,
  epsUncond: Float32Array,
  epsCond: Float32Array,
  channels: number,
  height: number,
  width: number,
  scale: number,
  tokens = 77,
): ScfgRate {
  const hw = height * width;
  const { tokenOfPixel, foreground } = masks;
  if (tokenOfPixel.length !== hw || foreground.length !== hw) invalid(`masks of ${hw} pixels`, 'masks', tokenOfPixel);
  if (epsUncond.length !== channels * hw || epsCond.length !== channels * hw)
    invalid(`${channels * hw} values`, 'eps', epsCond);
  const deltaNorm = new Float64Array(hw);
  for (let p = 0; p < hw; p++) {
    let s = 0;
    for (let c = 0; c < channels; c++) {
      const d = Math.fround(epsCond[c * hw + p] - epsUncond[c * hw + p]);
      s += d * d;
    }
    deltaNorm[p] = Math.sqrt(s);
  }
  const sum = new Float64Array(tokens),
    count = new Float64Array(tokens);
  let fgSum = 0,
    fgCount = 0;
  for (let p = 0; p < hw; p++) {
    const k = tokenOfPixel[p];
    if (!(k >= 0 && k < tokens)) invalid(`a token index below ${tokens}`, `tokenOfPixel[${p}]`, k);
    sum[k] += deltaNorm[p];
    count[k] += 1;
    if (foreground[p]) {
      fgSum += deltaNorm[p];
      fgCount += 1;
    }
  }
  const mFg = fgSum / (fgCount + 1e-8);
  const tokenRates = new Float64Array(tokens);
  for (let k = 0; k < tokens; k++) tokenRates[k] = count[k] > 0 ? mFg / (sum[k] / (count[k] + 1e-8) + 1e-8) : 0;
  const rateUnclamped = new Float64Array(hw);
  const clamped = new Float64Array(hw);
  const hi = scale > 0 ? Math.min(3, 15 / scale) : 3; // w = 0 (a schedule's first step): ε̂ = ε_u anyway
  for (let p = 0; p < hw; p++) {
    rateUnclamped[p] = tokenRates[tokenOfPixel[p]];
    clamped[p] = Math.min(Math.min(Math.max(rateUnclamped[p], 0.8), 3), hi);
  }
  const rate = Float32Array.from(gaussianSmooth3(clamped, 1, height, width));
  return { rate, rateUnclamped, deltaNorm, tokenRates };
}

/** The whole S-CFG step for one sample; see the file header. */
export function scfg(input: ScfgInput): ScfgResult {
  const t = input.tokens ?? 77;
  validate(input, t);
  const { channels, height, width, scale } = input;
  const masks = scfgMasks(input.layers, height, width, t);
  const r = scfgRate(masks, input.epsUncond, input.epsCond, channels, height, width, scale, t);
  const guided = cfgWithMap(input.epsUncond, input.epsCond, scale, r.rate);
  return { guided, ...r, ...masks };
}
