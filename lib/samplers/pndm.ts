// PNDM with skip_prk_steps (PLMS, PNDMScheduler.step_plms): N+1 model calls. Call 0 takes an Euler-like step
// 901→801 with ε_0; call 1 re-evaluates at 801 and redoes 901→801 with (ε_0 + ε_1)/2 (Heun-like); later calls
// use the Adams–Bashforth combinations of the last 2, 3, 4 ε. The transfer is PNDM's φ (eq. 11 of the paper).
import { pndmTimesteps } from '../schedules/index.js';
import { TimestepSampler } from './bases.js';
import { lincomb, type Resolved, type StepExtras } from './common.js';
import { alphaProd } from './ddim.js';

const f32 = Math.fround;

export class PndmSampler extends TimestepSampler {
  private readonly stride: number;
  private ets: Float32Array[] = [];
  private curSample: Float32Array | null = null;
  /**
   * diffusers' self.counter: calls taken since the start. After setBeginIndex (img2img) it restarts at 0, so the
   * second call is handled as the repeated timestep although it is not (diffusers' behaviour, kept).
   */
  private counter = 0;

  constructor(r: Resolved) {
    super(r, pndmTimesteps(r.steps, r.config));
    this.stride = Math.floor(r.config.numTrainTimesteps / r.steps);
  }

  protected override resetState(): void {
    this.ets = [];
    this.curSample = null;
    this.counter = 0;
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, _extras: StepExtras): Float32Array {
    let t = this.timesteps[i];
    let prevT = t - this.stride;
    const counter = this.counter++;
    if (counter !== 1) {
      if (this.ets.length > 3) this.ets = this.ets.slice(-3);
      this.ets.push(m);
    } else {
      prevT = t;
      t = t + this.stride;
    }
    const e = this.ets;
    const n = e.length;
    let sample = x;
    let eps: Float32Array;
    if (n === 1 && counter === 0) {
      eps = m;
      this.curSample = x;
    } else if (n === 1 && counter === 1) {
      eps = lincomb([
        [0.5, m],
        [0.5, e[0]],
      ]);
      sample = this.curSample!;
      this.curSample = null;
    } else if (n === 2) {
      eps = lincomb([
        [1.5, e[1]],
        [-0.5, e[0]],
      ]);
    } else if (n === 3) {
      eps = lincomb([
        [23 / 12, e[2]],
        [-16 / 12, e[1]],
        [5 / 12, e[0]],
      ]);
    } else {
      eps = lincomb([
        [55 / 24, e[3]],
        [-59 / 24, e[2]],
        [37 / 24, e[1]],
        [-9 / 24, e[0]],
      ]);
    }
    return this.prevSample(sample, t, prevT, eps);
  }

  private prevSample(x: Float32Array, t: number, prevT: number, out: Float32Array): Float32Array {
    const a = alphaProd(this.r, t);
    const aPrev = alphaProd(this.r, prevT);
    const b = f32(1 - a);
    const bPrev = f32(1 - aPrev);
    // v-prediction: diffusers mixes the raw v outputs of different timesteps above and converts the mix to ε
    // here with this step's ᾱ and sample (not exact for v-models; reproduced as is)
    const eps =
      this.r.prediction === 'v_prediction'
        ? lincomb([
            [Math.sqrt(a), out],
            [Math.sqrt(b), x],
          ])
        : out;
    const sampleCoeff = Math.sqrt(aPrev / a);
    const denom = a * Math.sqrt(bPrev) + Math.sqrt(a * b * aPrev);
    return lincomb([
      [sampleCoeff, x],
      [-(aPrev - a) / denom, eps],
    ]);
  }
}
