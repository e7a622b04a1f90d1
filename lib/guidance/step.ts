// One guided model call of the denoising loop: the U-Net pass(es) for call i and the guidance combine,
// for every method (cfg, s-cfg, cfg++, characteristic) — shared by the pipeline and `bench guidance`.
// Returns the model output the sampler steps with (and, for CFG++, the unconditional output).
import { concat } from '../arrays.js';
import type { PredictionType } from '../loading/types.js';
import type { CapturedAttention, NativeUNet, UNetForwardOptions } from '../native/unet.js';
import { cfg } from './cfg.js';
import { characteristicStep } from './characteristic-step.js';
import type { GuidanceMethod } from './methods.js';
import { rescaleGuidance } from './rescale.js';
import { scfg } from './scfg.js';
import { scfgLayers } from './scfg-layers.js';

export interface GuidedCallInput {
  unet: NativeUNet;
  method: GuidanceMethod;
  /** false: one conditional pass, no guidance (plain CFG with w ≤ 1) */
  guided: boolean;
  /** this call's guidance weight (after the schedule): w, or λ for cfg++ */
  weight: number;
  /** guidance rescale φ */
  rescale: number;
  /** U-Net input of this call, one sample [C, h, w] */
  xin: Float32Array;
  channels: number;
  height: number;
  width: number;
  timestep: number;
  /** [uncond; cond] text embeddings when guided, else the cond ones: [B, tokens, contextDim] */
  context: Float32Array;
  tokens: number;
  contextDim: number;
  forwardOptions: { nativeLatentSize?: UNetForwardOptions['nativeLatentSize'] };
  prediction: PredictionType;
  /** ᾱ at the U-Net input (characteristic guidance only) */
  alphaBar: () => number;
  checkAbort: () => void;
}

export interface GuidedCallResult {
  output: Float32Array;
  /** CFG++: the unconditional output for the sampler's renoising direction */
  uncondOutput?: Float32Array;
  /** characteristic guidance: U-Net passes this call */
  iterations?: number;
  /** characteristic guidance: false when the solver hit its cap and fell back to CFG */
  converged?: boolean;
  /** time in U-Net passes (ms) */
  unetMs: number;
}

export async function guidedModelCall(g: GuidedCallInput): Promise<GuidedCallResult> {
  const { xin, guided, method, weight } = g;
  const n = xin.length;
  const batch = guided ? 2 : 1;
  const inputs = {
    sample: guided ? concat(xin, xin) : xin,
    sampleShape: [batch, g.channels, g.height, g.width] as [number, number, number, number],
    timesteps: g.timestep,
    context: g.context,
    contextShape: [batch, g.tokens, g.contextDim] as [number, number, number],
  };
  let unetMs = 0;
  const timed = async <T>(p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await p();
    } finally {
      unetMs += performance.now() - t0;
    }
  };
  if (method === 'characteristic' && guided) {
    // One batched U-Net pass per fixed-point iteration.
    const r = await characteristicStep({
      xin,
      scale: weight,
      rescale: g.rescale,
      alphaBar: g.alphaBar(),
      channels: g.channels,
      prediction: g.prediction as 'epsilon' | 'v_prediction',
      forward: (sample) => timed(() => g.unet.forward({ ...inputs, sample }, g.forwardOptions)),
      checkAbort: g.checkAbort,
    });
    return { output: r.output, iterations: r.iterations, converged: r.converged, unetMs };
  }
  let out: Float32Array;
  let attention: CapturedAttention[] = [];
  if (method === 's-cfg' && guided) {
    const r = await timed(() => g.unet.forward(inputs, { ...g.forwardOptions, captureAttention: true }));
    out = r.output;
    attention = r.attention;
  } else {
    out = await timed(() => g.unet.forward(inputs, g.forwardOptions));
  }
  g.checkAbort();
  if (!guided) return { output: out, unetMs };
  const eu = out.subarray(0, n);
  const ec = out.subarray(n, 2 * n);
  if (method === 'cfg++') return { output: cfg(eu, ec, weight), uncondOutput: eu, unetMs };
  let eps =
    method === 's-cfg'
      ? scfg({
          layers: scfgLayers(attention),
          epsUncond: eu,
          epsCond: ec,
          channels: g.channels,
          height: g.height,
          width: g.width,
          scale: weight,
        }).guided
      : cfg(eu, ec, weight);
  if (g.rescale > 0) eps = rescaleGuidance(eps, ec, g.rescale);
  return { output: eps, unetMs };
}
