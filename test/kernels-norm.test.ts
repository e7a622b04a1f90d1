// Group norm, layer norm, softmax rows, activations, add and nearest upsampling vs the
// naive double-precision oracles (nd::ref::*). Stated tolerances:
//   norms: 1e-5 max abs on outputs of unit scale (f32 two-pass statistics); 2e-4 with a
//     mean of 100 (the f32 inputs themselves then carry ulp 8e-6 noise relative to std 1)
//   softmax: 1e-6 max abs (exp relative error <= 2e-7)
//   silu / quick_gelu: |Δ| <= 1e-6 + 1e-6·|y|; gelu / geglu: erf from A&S 7.1.26
//     (|Δerf| <= 1.5e-7) gives |Δ| <= 1e-6 + 1e-7·|x|
import test from 'ava';
import { type KernelIsa, maxAbsDiff, opsMisc, randomArray } from './helpers/ops-misc.js';

const isas: KernelIsa[] = opsMisc.kernelIsas().available;
const variants = isas.flatMap((isa) => [1, 2].map((threads) => ({ isa, threads })));

const groupCases = [
  { B: 2, C: 64, HW: 63, groups: 32 }, // odd HW
  { B: 1, C: 32, HW: 5, groups: 32 }, // one channel per group
  { B: 1, C: 320, HW: 1024, groups: 32 },
  { B: 2, C: 12, HW: 1, groups: 4 },
  { B: 1, C: 16, HW: 4099, groups: 2 }, // several 1024-value blocks plus a tail
];

for (const c of groupCases) {
  test(`group norm B${c.B} C${c.C} HW${c.HW} G${c.groups} (silu, affine, in place) matches the reference`, (t) => {
    const x = randomArray(c.B * c.C * c.HW, c.C + c.HW, 3);
    const gamma = randomArray(c.C, 1, 2);
    const beta = randomArray(c.C, 2);
    for (const silu of [false, true])
      for (const affine of [false, true]) {
        const args = { ...c, x, eps: 1e-5, silu, gamma: affine ? gamma : undefined, beta: affine ? beta : undefined };
        const ref = opsMisc.groupNorm({ ...args, reference: true });
        for (const v of variants)
          for (const inPlace of [false, true]) {
            const y = opsMisc.groupNorm({ ...args, ...v, inPlace });
            t.true(
              maxAbsDiff(y, ref) < 1e-5,
              `${v.isa} x${v.threads} silu ${silu} affine ${affine} inPlace ${inPlace}: ${maxAbsDiff(y, ref)}`,
            );
          }
      }
  });
}

test('group norm statistics stay accurate with a large mean', (t) => {
  const c = { B: 1, C: 64, HW: 4096, groups: 32 };
  const x = randomArray(c.B * c.C * c.HW, 9).map((v) => 100 + v);
  const ref = opsMisc.groupNorm({ ...c, x, eps: 1e-6, reference: true });
  for (const v of variants) t.true(maxAbsDiff(opsMisc.groupNorm({ ...c, x, eps: 1e-6, ...v }), ref) < 2e-4, v.isa);
});

test('layer norm matches the reference (tails, one column, in place, affine)', (t) => {
  for (const [M, C] of [
    [77, 768],
    [5, 5],
    [3, 1],
    [33, 320],
  ]) {
    const x = randomArray(M * C, M + C, 4);
    const gamma = randomArray(C, 3);
    const beta = randomArray(C, 4);
    for (const affine of [false, true]) {
      const args = { x, M, C, eps: 1e-5, gamma: affine ? gamma : undefined, beta: affine ? beta : undefined };
      const ref = opsMisc.layerNorm({ ...args, reference: true });
      for (const v of variants)
        for (const inPlace of [false, true])
          t.true(maxAbsDiff(opsMisc.layerNorm({ ...args, ...v, inPlace }), ref) < 1e-5, `${M}x${C} ${v.isa}`);
    }
  }
});

test('softmax rows are stable for large magnitudes and match the reference', (t) => {
  for (const [rows, cols] of [
    [3, 1],
    [5, 7],
    [16, 77],
    [4, 4096],
  ]) {
    for (const magnitude of [1, 1e4, 1e30]) {
      const x = randomArray(rows * cols, cols, magnitude);
      const ref = opsMisc.softmaxRows({ x, rows, cols, reference: true });
      for (const v of variants) {
        const y = opsMisc.softmaxRows({ x, rows, cols, ...v });
        t.true(y.every(Number.isFinite), `${rows}x${cols} ${magnitude}`);
        t.true(maxAbsDiff(y, ref) < 1e-6, `${rows}x${cols} magnitude ${magnitude} ${v.isa}: ${maxAbsDiff(y, ref)}`);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let j = 0; j < cols; j++) s += y[r * cols + j];
          t.true(Math.abs(s - 1) < 1e-5);
        }
      }
    }
  }
});

function activationInputs(): Float32Array {
  const xs: number[] = [0, -0, 1e-30, -1e-30, 100, -100, 88, -88, 89, -89, 1e30, -1e30];
  for (let i = 0; i <= 8000; i++) xs.push(-20 + i * 0.005);
  return Float32Array.from(xs);
}

function withinTolerance(
  y: Float32Array,
  ref: Float32Array,
  x: Float32Array,
  absTol: number,
  relTol: number,
  xTol: number,
) {
  for (let i = 0; i < y.length; i++) {
    const tol = absTol + relTol * Math.abs(ref[i]) + xTol * Math.abs(x[i]);
    if (!(Math.abs(y[i] - ref[i]) <= tol)) return `x=${x[i]} y=${y[i]} ref=${ref[i]}`;
  }
  return '';
}

test('silu, quick_gelu and gelu match the reference over [-20, 20] and at extremes', (t) => {
  const x = activationInputs();
  for (const op of ['silu', 'quick_gelu', 'gelu'] as const) {
    const ref = opsMisc.activation({ op, x, reference: true });
    for (const v of variants) {
      const y = opsMisc.activation({ op, x, ...v });
      const bad =
        op === 'gelu' ? withinTolerance(y, ref, x, 1e-6, 2e-7, 1e-7) : withinTolerance(y, ref, x, 1e-6, 1e-6, 0);
      t.is(bad, '', `${op} ${v.isa}`);
    }
  }
});

test('geglu matches the reference', (t) => {
  const [M, N] = [7, 37];
  const x = randomArray(M * 2 * N, 5, 6);
  const ref = opsMisc.geglu({ x, M, N, reference: true });
  for (const v of variants) t.true(maxAbsDiff(opsMisc.geglu({ x, M, N, ...v }), ref) < 4e-6, v.isa);
});

test('add (in place) and nearest upsampling are exact', (t) => {
  const a = randomArray(100003, 1);
  const b = randomArray(100003, 2);
  const ref = opsMisc.add({ a, b, reference: true });
  t.deepEqual(opsMisc.add({ a, b, threads: 2 }), ref);
  for (const [BC, H, W] of [
    [3, 5, 7],
    [1, 1, 1],
    [8, 64, 64],
  ]) {
    const x = randomArray(BC * H * W, BC + H);
    t.deepEqual(
      opsMisc.upsampleNearest2x({ x, BC, H, W, threads: 2 }),
      opsMisc.upsampleNearest2x({ x, BC, H, W, reference: true }),
    );
  }
});

test('norms reject bad shapes with typed errors', (t) => {
  const x = randomArray(30, 1);
  t.throws(() => opsMisc.groupNorm({ x, B: 1, C: 10, HW: 3, groups: 3, eps: 1e-5 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => opsMisc.groupNorm({ x, B: 1, C: 10, HW: 4, groups: 5, eps: 1e-5 }), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => opsMisc.layerNorm({ x, M: 3, C: 10, eps: -1 }), { code: 'ERR_INVALID_ARGUMENT' });
});
