// Blocked GEMM kernels (linear, gemm_f32) against the naive double-accumulating reference, on
// every ISA level the CPU has, 1 and 2 threads, awkward shapes and f16/bf16 weights.
import test from 'ava';
import {
  dotTolerance,
  isaLevels,
  maxAbs,
  maxDiff,
  opsGemm,
  randomArray,
  type WeightDType,
} from './helpers/ops-gemm.js';

const ops = opsGemm();
const isas = isaLevels();

// [M, N, K]: one row (matrix-vector path), tiny K, N = 77 (CLIP tokens), tile remainders on
// every side, several K blocks, and products big enough that two threads split M or N.
const linearShapes: Array<[number, number, number]> = [
  [1, 77, 5],
  [3, 40, 130],
  [5, 77, 1],
  [14, 32, 256],
  [37, 45, 300],
  [100, 64, 513],
  [130, 100, 200],
  [20, 600, 100],
  [3, 5, 0],
];

for (const isa of isas) {
  for (const dtype of ['F32', 'F16', 'BF16'] as WeightDType[]) {
    test(`linear ${isa} ${dtype} weights matches the reference`, (t) => {
      const failures: string[] = [];
      let seed = 1;
      for (const [M, N, K] of linearShapes) {
        for (const threads of [1, 2]) {
          const x = randomArray(M * K, seed++);
          const w = randomArray(N * K, seed++);
          const bias = randomArray(N, seed++);
          const y = randomArray(M * N, seed++);
          for (const accumulate of [false, true]) {
            const args = { x, M, K, w, dtype, N, bias: accumulate ? undefined : bias, y, accumulate, threads, isa };
            const got = ops.linear(args);
            const want = ops.linear({ ...args, reference: true });
            const tol = dotTolerance(K, maxAbs(x), maxAbs(w));
            const d = maxDiff(got, want);
            if (!(d <= tol))
              failures.push(`M=${M} N=${N} K=${K} threads=${threads} accumulate=${accumulate}: ${d} > ${tol}`);
          }
        }
      }
      t.deepEqual(failures, []);
    });
  }

  test(`gemm_f32 ${isa} with every transpose matches the reference`, (t) => {
    const failures: string[] = [];
    let seed = 100;
    for (const [M, N, K] of [
      [1, 1, 1],
      [7, 33, 17],
      [45, 31, 260],
      [90, 120, 40],
      [4, 6, 0],
    ] as Array<[number, number, number]>) {
      for (const transA of [false, true])
        for (const transB of [false, true])
          for (const threads of [1, 2]) {
            const A = randomArray(M * K, seed++);
            const B = randomArray(K * N, seed++);
            const C = randomArray(M * N, seed++);
            const base = { transA, transB, M, N, K, A, B, threads, isa };
            const tol = dotTolerance(K, maxAbs(A), maxAbs(B)) + 1e-6;
            const got = ops.gemm({ ...base, alpha: 0.5, beta: 0.25, C });
            const want = ops.gemm({ ...base, alpha: 0.5, beta: 0.25, C, reference: true });
            const d = maxDiff(got, want);
            if (!(d <= tol))
              failures.push(`${M}x${N}x${K} tA=${transA} tB=${transB} threads=${threads}: ${d} > ${tol}`);
            // beta = 0 must not read C: NaN there may not leak into the result.
            const nan = new Float32Array(M * N).fill(Number.NaN);
            const clean = ops.gemm({ ...base, alpha: 1.5, beta: 0, C: nan });
            const cleanRef = ops.gemm({ ...base, alpha: 1.5, beta: 0, reference: true });
            const d0 = maxDiff(clean, cleanRef);
            if (!(d0 <= 3 * tol)) failures.push(`beta=0 ${M}x${N}x${K} tA=${transA} tB=${transB}: ${d0}`);
          }
    }
    t.deepEqual(failures, []);
  });
}

test('linear results do not depend on the thread count beyond rounding', (t) => {
  const [M, N, K] = [64, 96, 320];
  const x = randomArray(M * K, 7);
  const w = randomArray(N * K, 8);
  const one = ops.linear({ x, M, K, w, dtype: 'F16', N, threads: 1 });
  const two = ops.linear({ x, M, K, w, dtype: 'F16', N, threads: 2 });
  t.true(maxDiff(one, two) <= dotTolerance(K, 1, 1));
});

test('bad arguments are typed errors, not crashes', (t) => {
  const x = new Float32Array(6);
  const w = new Float32Array(6);
  t.throws(() => ops.linear({ x, M: 2, K: 3, w, dtype: 'F8' as WeightDType, N: 2 }), {
    message: /Expected 'F32', 'F16' or 'BF16' for dtype/,
  });
  const e = t.throws(() => ops.linear({ x, M: 2, K: 4, w, dtype: 'F32', N: 2 }));
  t.is((e as Error & { code?: string }).code, 'ERR_SHAPE_MISMATCH');
  t.throws(() => ops.gemm({ transA: false, transB: false, M: -1, N: 2, K: 2, alpha: 1, A: x, B: w, beta: 0 }), {
    message: /Expected an integer in/,
  });
});
