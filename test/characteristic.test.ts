// Characteristic guidance solver (lib/guidance/characteristic.ts) on synthetic models with known structure.
import test from 'ava';
import { cfg } from '../lib/guidance/cfg.js';
import {
  type CharacteristicEvaluation,
  characteristicGuidance,
  directionProjection,
} from '../lib/guidance/characteristic.js';

const C = 4,
  H = 6,
  W = 5,
  N = C * H * W;

function seeded(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}
const rnd = seeded(7);
const x = Float32Array.from({ length: N }, () => rnd());

/** ε(x) = a ⊙ x + b per element: a smooth model with a known Jacobian. */
function affine(a: Float64Array, b: Float64Array) {
  return (v: Float32Array) => Float32Array.from(v, (xi, i) => a[i] * xi + b[i]);
}
const aU = Float64Array.from({ length: N }, () => 0.5 + 0.2 * rnd());
const bU = Float64Array.from({ length: N }, () => rnd());
const aC = Float64Array.from({ length: N }, () => 0.5 + 0.2 * rnd());
const bC = Float64Array.from({ length: N }, () => rnd());
const epsU = affine(aU, bU),
  epsC = affine(aC, bC);

function counting(fc: (v: Float32Array) => Float32Array, fu: (v: Float32Array) => Float32Array) {
  const calls: { xc: Float32Array; xu: Float32Array }[] = [];
  const model = async (xc: Float32Array, xu: Float32Array): Promise<CharacteristicEvaluation> => {
    calls.push({ xc, xu });
    return { cond: fc(xc), uncond: fu(xu) };
  };
  return { model, calls };
}

test('ε_c = ε_u gives Δx = 0 after one evaluation, and CFG (= ε) exactly', async (t) => {
  const { model, calls } = counting(epsU, epsU);
  const r = await characteristicGuidance(x, model, { scale: 7.5, noiseScale: 0.8, channels: C });
  t.true(r.converged);
  t.is(r.iterations, 1);
  t.is(calls.length, 1);
  t.deepEqual(Array.from(r.dx), new Array(N).fill(0));
  t.deepEqual(r.guided, cfg(epsU(x), epsU(x), 7.5));
});

test('forcing Δx = 0 (a projection onto {0}) gives CFG bit for bit', async (t) => {
  const { model } = counting(epsC, epsU);
  const r = await characteristicGuidance(x, model, {
    scale: 5,
    noiseScale: 0.9,
    channels: C,
    project: (v) => v.fill(0),
  });
  t.true(r.converged);
  t.is(r.iterations, 1);
  t.deepEqual(r.guided, cfg(epsU(x), epsC(x), 5));
});

test('w = 1 gives the conditional prediction at x', async (t) => {
  const { model } = counting(epsC, epsU);
  const r = await characteristicGuidance(x, model, { scale: 1, noiseScale: 0.9, channels: C });
  t.true(r.converged);
  const ec = epsC(x);
  for (let i = 0; i < N; i++) t.true(Math.abs(r.guided[i] - ec[i]) <= 1e-6 * (1 + Math.abs(ec[i])), `at ${i}`);
});

test('the solution satisfies Δx = P[s(ε_u(x + wΔx) − ε_c(x + (w−1)Δx))] to the tolerance, in few iterations', async (t) => {
  const w = 7.5,
    s = 0.95;
  const { model, calls } = counting(epsC, epsU);
  const r = await characteristicGuidance(x, model, { scale: w, noiseScale: s, channels: C });
  t.true(r.converged);
  t.true(r.iterations > 1 && r.iterations <= 51);
  t.is(calls.length, r.iterations);
  // Independent check of the fixed point with the returned Δx.
  const dx = r.dx;
  const xc = Float32Array.from(x, (v, i) => v + (w - 1) * dx[i]);
  const xu = Float32Array.from(x, (v, i) => v + w * dx[i]);
  const g = Float64Array.from({ length: N }, (_, i) => s * (epsU(xu)[i] - epsC(xc)[i]));
  const pg = directionProjection(C, 1)(g, { cond: epsC(x), uncond: epsU(x) });
  let err = 0,
    norm = 0;
  for (let i = 0; i < N; i++) {
    err += (pg[i] - dx[i]) ** 2;
    norm += dx[i] ** 2;
  }
  t.true(Math.sqrt(err / N) / s <= 1e-4 * 1.01, `residual ${Math.sqrt(err / N) / s}`);
  t.true(norm > 0, 'a non-trivial correction');
  // The guided output combines the evaluations at the solution, not at x.
  const expected = cfg(epsU(xu), epsC(xc), w);
  for (let i = 0; i < N; i++) t.true(Math.abs(r.guided[i] - expected[i]) < 1e-4);
  t.notDeepEqual(r.guided, cfg(epsU(x), epsC(x), w));
});

test('Anderson acceleration needs fewer evaluations than damped Picard iteration', async (t) => {
  const opts = { scale: 7.5, noiseScale: 0.99, channels: C, regularization: 0.05 };
  const aa = await characteristicGuidance(x, counting(epsC, epsU).model, { ...opts, history: 3 });
  const picard = await characteristicGuidance(x, counting(epsC, epsU).model, {
    ...opts,
    history: 0,
    maxIterations: 200,
  });
  t.true(aa.converged && picard.converged);
  t.true(aa.iterations < picard.iterations, `${aa.iterations} vs ${picard.iterations}`);
});

test('no convergence within the cap, or non-finite outputs, fall back to CFG from the Δx = 0 evaluation', async (t) => {
  const capped = await characteristicGuidance(x, counting(epsC, epsU).model, {
    scale: 7.5,
    noiseScale: 0.9,
    channels: C,
    maxIterations: 1,
    history: 0,
    regularization: 0,
  });
  t.false(capped.converged);
  t.is(capped.iterations, 2);
  t.deepEqual(capped.guided, cfg(epsU(x), epsC(x), 7.5));
  t.deepEqual(Array.from(capped.dx), new Array(N).fill(0));
  let k = 0;
  const nan = async (xc: Float32Array, xu: Float32Array) =>
    k++ === 0 ? { cond: epsC(xc), uncond: epsU(xu) } : { cond: new Float32Array(N).fill(Number.NaN), uncond: epsU(xu) };
  const bad = await characteristicGuidance(x, nan, { scale: 7.5, noiseScale: 0.9, channels: C });
  t.false(bad.converged);
  t.deepEqual(bad.guided, cfg(epsU(x), epsC(x), 7.5));
});

test('validates its options', async (t) => {
  const { model } = counting(epsC, epsU);
  await t.throwsAsync(characteristicGuidance(x, model, { scale: 7.5, noiseScale: 0 }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
  await t.throwsAsync(characteristicGuidance(x, model, { scale: 7.5, noiseScale: 1, maxIterations: -1 }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
  await t.throwsAsync(characteristicGuidance(x, model, { scale: Number.NaN, noiseScale: 1 }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
});
