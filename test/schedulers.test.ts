// Scheduler tables against diffusers 0.29 (test/fixtures/schedulers/table_*): betas and ᾱ bit-exact, timesteps
// exact, σ to float32 rounding (rel 2e-7: diffusers' float32 pow/log vs our float64-then-round), init noise σ
// and final ᾱ exact or to 1 ulp. Plus properties of the Karras / exponential / sgm-uniform / custom schedules.
import test from 'ava';
import { sd15Scheduler } from '../lib/loading/defaults.js';
import type { SchedulerConfig } from '../lib/loading/types.js';
import { createSampler } from '../lib/samplers/index.js';
import {
  ddimTimesteps,
  dpmPlan,
  dpmTimesteps,
  exponentialSigmas,
  karrasSigmas,
  kdiffusionPlan,
  kdiffusionTimesteps,
  lcmTimesteps,
  noiseTable,
  pndmTimesteps,
  roundHalfEven,
  sigmaToT,
  torchLinspaceF32,
} from '../lib/schedules/index.js';
import { fixture, readSafetensors } from './helpers/fixtures.js';

// The SD 1.5 scheduler config without its class name (the tests pick samplers explicitly).
const { className: _sd15Class, ...SD15 }: SchedulerConfig = sd15Scheduler();

const table = (name: string) => readSafetensors(fixture(`schedulers/table_${name}.safetensors`)).tensors;

function relClose(t: any, got: ArrayLike<number>, want: ArrayLike<number>, rel = 2e-7, label = '') {
  t.is(got.length, want.length, `${label} length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-30);
    if (want[i] === 0) t.is(got[i], 0, `${label}[${i}] should be 0`);
    else worst = Math.max(worst, d);
  }
  t.true(worst <= rel, `${label}: worst relative error ${worst} > ${rel}`);
}

test('betas and alphas_cumprod are bit-exact (scaled_linear, torch float32 linspace + float64 cumprod)', (t) => {
  for (const name of ['ddim', 'pndm', 'euler', 'euler_a', 'lms', 'dpmpp_2m', 'dpmpp_2m_karras', 'unipc', 'lcm']) {
    const f = table(name);
    const nt = noiseTable(SD15);
    t.deepEqual(Array.from(nt.betas), Array.from(f.betas.data as Float32Array), `${name} betas`);
    t.deepEqual(Array.from(nt.alphasCumprod), Array.from(f.alphas_cumprod.data as Float32Array), `${name} ᾱ`);
  }
});

test('discrete timesteps, final ᾱ and init noise σ: ddim, pndm, lcm', (t) => {
  for (const steps of [10, 20]) {
    const d = table('ddim');
    t.deepEqual(ddimTimesteps(steps, SD15), d[`steps${steps}.timesteps`].data);
    t.deepEqual(createSampler('ddim', { steps, config: SD15 }).timesteps, d[`steps${steps}.timesteps`].data);
    t.is(
      Math.fround(noiseTable(SD15).alphasCumprod[0]),
      (d[`steps${steps}.final_alpha_cumprod`].data as Float32Array)[0],
    );
    t.is(
      createSampler('ddim', { steps, config: SD15 }).initNoiseSigma,
      (d[`steps${steps}.init_noise_sigma`].data as Float32Array)[0],
    );
    const p = table('pndm');
    t.deepEqual(pndmTimesteps(steps, SD15), p[`steps${steps}.timesteps`].data);
    const pndm = createSampler('pndm', { steps, config: SD15 });
    t.is(pndm.modelCalls, steps + 1);
    t.is(pndm.initNoiseSigma, (p[`steps${steps}.init_noise_sigma`].data as Float32Array)[0]);
    const l = table('lcm');
    t.deepEqual(lcmTimesteps(steps, SD15), l[`steps${steps}.timesteps`].data);
    t.is(
      createSampler('lcm', { steps, config: SD15 }).initNoiseSigma,
      (l[`steps${steps}.init_noise_sigma`].data as Float32Array)[0],
    );
  }
});

test('σ-based tables: euler, euler a, lms (float timesteps, σ, init noise σ = √(σ_max²+1))', (t) => {
  for (const [fx, sampler] of [
    ['euler', 'euler'],
    ['euler_a', 'euler-a'],
    ['lms', 'lms'],
  ] as const) {
    const f = table(fx);
    for (const steps of [10, 20]) {
      const s = createSampler(sampler, { steps, config: SD15 });
      t.deepEqual(Array.from(s.timesteps), Array.from(f[`steps${steps}.timesteps`].data), `${fx} ${steps} timesteps`);
      relClose(t, s.sigmas!, f[`steps${steps}.sigmas`].data as Float32Array, 2e-7, `${fx} ${steps} sigmas`);
      t.is(s.initNoiseSigma, (f[`steps${steps}.init_noise_sigma`].data as Float32Array)[0], `${fx} init noise sigma`);
    }
  }
});

test('σ-based tables: dpmpp-2m, dpmpp-2m karras, unipc (N+1-point leading spacing)', (t) => {
  for (const [fx, sampler, schedule] of [
    ['dpmpp_2m', 'dpmpp-2m', 'normal'],
    ['dpmpp_2m_karras', 'dpmpp-2m', 'karras'],
    ['unipc', 'unipc', 'normal'],
  ] as const) {
    const f = table(fx);
    for (const steps of [10, 20]) {
      const s = createSampler(sampler, { steps, config: SD15, schedule });
      t.deepEqual(Array.from(s.timesteps), Array.from(f[`steps${steps}.timesteps`].data), `${fx} ${steps} timesteps`);
      relClose(t, s.sigmas!, f[`steps${steps}.sigmas`].data as Float32Array, 4e-7, `${fx} ${steps} sigmas`);
      t.is(s.initNoiseSigma, (f[`steps${steps}.init_noise_sigma`].data as Float32Array)[0]);
    }
  }
});

test('spacings: trailing and linspace follow diffusers formulas', (t) => {
  const trailing = { ...SD15, timestepSpacing: 'trailing' as const };
  const linspace = { ...SD15, timestepSpacing: 'linspace' as const };
  t.deepEqual(ddimTimesteps(10, trailing), [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
  t.deepEqual(ddimTimesteps(4, linspace), [999, 666, 333, 0]);
  t.deepEqual(kdiffusionTimesteps(4, linspace), [999, 666, 333, 0]);
  t.deepEqual(
    kdiffusionTimesteps(3, linspace).map((v) => v),
    [999, 499.5, 0],
  );
  t.deepEqual(dpmTimesteps(4, linspace), [999, 749, 500, 250]); // np.round(749.25)=749, 499.5→500 (half to even)
  t.deepEqual(pndmTimesteps(4, trailing), [999, 749, 749, 499, 249]);
  t.is(
    createSampler('euler', { steps: 10, config: trailing }).initNoiseSigma,
    createSampler('euler', { steps: 10, config: trailing }).sigmas![0],
  );
  t.is(roundHalfEven(2.5), 2);
  t.is(roundHalfEven(3.5), 4);
  t.is(roundHalfEven(-0.5), -0);
});

test('linear and cosine beta schedules are well formed', (t) => {
  const lin = noiseTable({ ...SD15, betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 });
  t.is(lin.betas[0], Math.fround(0.0001));
  t.is(lin.betas[999], Math.fround(0.02));
  t.deepEqual(Array.from(torchLinspaceF32(0, 1, 5)), [0, 0.25, 0.5, 0.75, 1]);
  const cos = noiseTable({ ...SD15, betaSchedule: 'squaredcos_cap_v2' });
  t.true(cos.betas.every((b, i) => b > 0 && b <= Math.fround(0.999) && (i === 0 || b >= cos.betas[i - 1] - 1e-7)));
  t.true(cos.alphasCumprod.every((a, i) => i === 0 || a < cos.alphasCumprod[i - 1]));
});

function decreasing(s: readonly number[]): boolean {
  return s.every((v, i) => i === 0 || v < s[i - 1]);
}

test('karras / exponential / sgm-uniform: monotone, endpoints, final 0', (t) => {
  const nt = noiseTable(SD15);
  const sMin = nt.sigmas[0];
  const sMax = nt.sigmas[999];
  const k = karrasSigmas(sMin, sMax, 12);
  t.true(Math.abs(k[0] - sMax) < 1e-12 * sMax && Math.abs(k[11] - sMin) < 1e-12);
  t.true(decreasing(k));
  // ρ = 7: σ^{1/7} is linear in i
  const inv = k.map((s) => s ** (1 / 7));
  for (let i = 1; i < 11; i++) t.true(Math.abs(inv[i + 1] - 2 * inv[i] + inv[i - 1]) < 1e-12);
  const e = exponentialSigmas(sMin, sMax, 9);
  t.true(decreasing(e) && Math.abs(e[0] - sMax) < 1e-9 && Math.abs(e[8] - sMin) < 1e-12);
  for (let i = 1; i < 8; i++) t.true(Math.abs(Math.log(e[i + 1]) - 2 * Math.log(e[i]) + Math.log(e[i - 1])) < 1e-12);
  for (const schedule of ['karras', 'exponential', 'sgm-uniform'] as const) {
    for (const name of ['euler', 'dpmpp-2m', 'unipc', 'heun', 'lms', 'euler-a'] as const) {
      const s = createSampler(name, { steps: 8, config: SD15, schedule });
      const sig = s.sigmas!;
      t.is(sig[sig.length - 1], 0, `${name} ${schedule} ends at 0`);
      t.true(
        decreasing(sig.filter((_, i) => name !== 'heun' || i === 0 || sig[i] !== sig[i - 1])),
        `${name} ${schedule} decreasing`,
      );
      t.true(
        s.timesteps.every((ts, i) => ts >= 0 && ts <= 999 && (i === 0 || ts <= s.timesteps[i - 1])),
        `${name} ${schedule} timesteps`,
      );
    }
  }
  const dk = dpmPlan({ steps: 10, config: SD15, schedule: 'karras' });
  t.true(Math.abs(dk.sigmas[0] - Math.fround(sMax)) === 0 && dk.timesteps[0] === 999 && dk.timesteps[9] === 0);
  const sgm = dpmPlan({ steps: 10, config: SD15, schedule: 'sgm-uniform' });
  t.true(Math.abs(sgm.sigmas[0] - sMax) < 1e-5 * sMax);
  t.is(sgm.timesteps[0], 999);
  t.is(sgm.timesteps[9], 100); // 999·(1 − 9/10) = 99.9 → 100
  // euler family karras spans [σ(t_last), σ(t_first)] of the leading spacing (diffusers)
  const ek = kdiffusionPlan({ steps: 10, config: SD15, schedule: 'karras' });
  t.is(ek.sigmas[0], nt.sigmas[901]);
  t.true(Math.abs(ek.sigmas[9] - nt.sigmas[1]) < 1e-7);
});

test('sigmaToT inverts the table and custom sigmas drive the timesteps', (t) => {
  const nt = noiseTable(SD15);
  for (const ts of [0, 1, 250, 500, 998, 999]) t.true(Math.abs(sigmaToT(nt.sigmas[ts], nt.logSigmas) - ts) < 1e-4);
  t.is(sigmaToT(1e-6, nt.logSigmas), 0);
  t.is(sigmaToT(1e6, nt.logSigmas), 999);
  const mid = Math.exp((nt.logSigmas[400] + nt.logSigmas[401]) / 2);
  t.true(Math.abs(sigmaToT(mid, nt.logSigmas) - 400.5) < 1e-4);
  const s = createSampler('euler', { steps: 1, config: SD15, sigmas: [nt.sigmas[700], nt.sigmas[300], nt.sigmas[10]] });
  t.is(s.modelCalls, 3);
  t.deepEqual(s.sigmas!.slice(-1), [0]);
  t.true(Math.abs(s.timesteps[1] - 300) < 1e-3);
  const d = createSampler('dpmpp-2m', { steps: 1, config: SD15, sigmas: [nt.sigmas[700], nt.sigmas[300], 0] });
  t.deepEqual(Array.from(d.timesteps), [700, 300]);
});
