// Guidance combines for the layered sampler (lib/samplers/layered.ts), one per method of GenerateOptions.guidance.
// The layered model predicts v; every method works on v directly. That is exact for the linear methods: with the
// same state z, ε = σz + αv and x̂0 = αz − σv are affine in v, so v_u + w(v_c − v_u) is the v of
// ε_u + w(ε_c − ε_u). Per step:
//   cfg             v = v_u + w_i(v_c − v_u), w_i from the guidance schedule (scheduledWeight);
//                   then guidance rescale φ on v (v_r = v·std(v_c)/std(v), v = φv_r + (1 − φ)v), as diffusers
//                   applies rescale_noise_cfg to the model output of v-prediction models (Lin et al. §3.4).
//   cfg++ (DDIM)    x̂0 from v_λ = v_u + λ_i(v_c − v_u), renoising direction ε from v_u (docs/design.md §5.4).
//   s-cfg           v = v_u + w_i·rate(p)·(v_c − v_u) with rate from the head-averaged attention of the 3
//                   transformer blocks (8×8, 4×4, 8×8 at native size: the 1/2 and 1/4 levels of the lowest
//                   scale, the same role as SD's 16×16 / 8×8 levels), lib/guidance/scfg.ts; then rescale.
//   characteristic  the fixed-point solve of lib/guidance/characteristic.ts through characteristicStep in the
//                   VP coordinates of the top scale (ᾱ = α², s = σ); each iteration is one batched pass of
//                   [uncond; cond] whose lower scales are derived from the shifted states; then rescale (on ε).
import { DiffusionError, invalid } from '../errors.js';
import type { LayeredAttention } from '../native/layered.js';
import type { LayeredCombined, LayeredGuidance, LayeredStep } from '../samplers/layered.js';
import { characteristicStep } from './characteristic-step.js';
import type { GuidanceMethod } from './methods.js';
import { rescaleGuidance } from './rescale.js';
import { type ScfgLayerAttention, scfg } from './scfg.js';
import { type GuidanceSchedule, scheduledWeight } from './schedule.js';

export interface LayeredGuidanceSettings {
  method: GuidanceMethod;
  /** w (cfg, s-cfg, characteristic) or λ (cfg++) */
  scale: number;
  schedule: GuidanceSchedule;
  /** guidance rescale φ ∈ [0, 1] (cfg, s-cfg, characteristic) */
  rescale: number;
}

function blend(vu: Float32Array, vc: Float32Array, w: number): Float32Array {
  const v = new Float32Array(vc.length);
  for (let j = 0; j < v.length; j++) v[j] = vu[j] + w * (vc[j] - vu[j]);
  return v;
}

/**
 * Per-item S-CFG layers from attention captured over the batch [cond B; uncond B]: one entry per transformer
 * block with its self- and cross-attention probabilities of item b.
 */
export function layeredScfgLayers(attention: LayeredAttention[], b: number, batch: number): ScfgLayerAttention[] {
  const blocks = new Map<string, { self?: LayeredAttention; cross?: LayeredAttention }>();
  for (const a of attention) {
    const name = a.name.replace(/\.attn[12]$/, '');
    const entry = blocks.get(name) ?? {};
    entry[a.kind] = a;
    blocks.set(name, entry);
  }
  const layers: ScfgLayerAttention[] = [];
  for (const [name, { self, cross }] of blocks) {
    if (!self || !cross) invalid('both attn1 and attn2', `captured attention of ${name}`, self ? 'attn1' : 'attn2');
    const sItem = self.probs.length / (2 * batch);
    const cItem = cross.probs.length / (2 * batch);
    const item = (p: Float32Array, size: number, k: number) => p.subarray(k * size, (k + 1) * size);
    layers.push({
      height: self.h,
      width: self.w,
      selfCond: item(self.probs, sItem, b),
      selfUncond: item(self.probs, sItem, batch + b),
      crossCond: item(cross.probs, cItem, b),
      crossUncond: item(cross.probs, cItem, batch + b),
    });
  }
  return layers;
}

function perItem(
  step: LayeredStep,
  fn: (b: number, range: [number, number]) => Float32Array,
  out = new Float32Array(step.batch * step.channels * step.height * step.width),
): Float32Array {
  const per = step.channels * step.height * step.width;
  for (let b = 0; b < step.batch; b++) out.set(fn(b, [b * per, (b + 1) * per]), b * per);
  return out;
}

function rescaled(step: LayeredStep, v: Float32Array, vc: Float32Array, phi: number): Float32Array {
  return phi > 0 ? rescaleGuidance(v, vc, phi, step.batch) : v;
}

/** The combine for one resolved guidance setting (see the file header). */
export function layeredGuidance(g: LayeredGuidanceSettings): LayeredGuidance {
  const weight = (step: LayeredStep) => scheduledWeight(g.scale, step.index, step.steps, g.schedule);
  switch (g.method) {
    case 'cfg':
      return {
        // w = 1 everywhere is v_c: skip the unconditional half (rescale to std(v_c) is then the identity).
        unconditional: g.scale !== 1 || g.schedule !== 'constant',
        combine(step, vc, vu): LayeredCombined {
          if (!vu) return { v: vc };
          return { v: rescaled(step, blend(vu, vc, weight(step)), vc, g.rescale) };
        },
      };
    case 'cfg++':
      return {
        unconditional: true,
        combine(step, vc, vu): LayeredCombined {
          if (!vu) throw new Error('cfg++ needs the unconditional pass');
          return { v: blend(vu, vc, weight(step)), vRenoise: vu };
        },
      };
    case 's-cfg':
      return {
        unconditional: true,
        captureAttention: true,
        combine(step, vc, vu, attention): LayeredCombined {
          if (!vu || !attention) throw new Error('s-cfg needs the unconditional pass and the attention');
          const w = weight(step);
          const cross = attention.find((a) => a.kind === 'cross');
          if (!cross) throw new Error('s-cfg needs the cross-attention probabilities');
          const tokens = cross.probs.length / (2 * step.batch * cross.h * cross.w);
          const v = perItem(step, (b, [lo, hi]) =>
            w === 0
              ? vu.slice(lo, hi)
              : scfg({
                  layers: layeredScfgLayers(attention, b, step.batch),
                  epsUncond: vu.subarray(lo, hi),
                  epsCond: vc.subarray(lo, hi),
                  channels: step.channels,
                  height: step.height,
                  width: step.width,
                  scale: w,
                  tokens,
                }).guided,
          );
          return { v: rescaled(step, v, vc, g.rescale) };
        },
      };
    case 'characteristic':
      return {
        unconditional: true,
        async combine(step, vc, vu): Promise<LayeredCombined> {
          if (!vu) throw new Error('characteristic guidance needs the unconditional pass');
          const w = weight(step);
          let iterations = 0;
          let converged = true;
          const out = new Float32Array(vc.length);
          const per = step.channels * step.height * step.width;
          for (let b = 0; b < step.batch; b++) {
            const context = new Float32Array(2 * step.condContext(b).length);
            context.set(step.uncondContext(b), 0);
            context.set(step.condContext(b), step.condContext(b).length);
            let first = true;
            const r = await characteristicStep({
              xin: step.z.subarray(b * per, (b + 1) * per),
              scale: w,
              rescale: g.rescale,
              alphaBar: step.alpha * step.alpha,
              prediction: 'v_prediction',
              channels: step.channels,
              // The solver's first evaluation is at Δx = 0: the batched pass already made it.
              forward: async (sample) => {
                if (first) {
                  first = false;
                  const both = new Float32Array(2 * per);
                  both.set(vu.subarray(b * per, (b + 1) * per), 0);
                  both.set(vc.subarray(b * per, (b + 1) * per), per);
                  return both;
                }
                iterations++;
                return step.evaluate(sample, context, 2);
              },
              checkAbort: () => {
                if (step.signal?.aborted) throw new DiffusionError('ERR_ABORTED', 'Sampling was aborted');
              },
            });
            out.set(r.output, b * per);
            converged &&= r.converged;
          }
          return { v: out, iterations, converged };
        },
      };
    default:
      return invalid('one of cfg, s-cfg, cfg++, characteristic', 'guidance.method', g.method);
  }
}
