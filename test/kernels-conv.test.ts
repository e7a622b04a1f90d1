// Implicit-GEMM convolution against the naive reference: 3×3 stride 1/2 with padding, 1×1,
// other kernel sizes, odd and non-square images, batch 2, Cin = 4, f16/bf16 weights, 1 and 2
// threads, on every ISA level the CPU has.
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

interface Shape {
  B: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  k: number;
  stride: number;
  pad: number;
}
const shapes: Shape[] = [
  { B: 2, Cin: 4, H: 9, W: 13, Cout: 20, k: 3, stride: 1, pad: 1 }, // first U-Net conv: Cin = 4, batch 2
  { B: 1, Cin: 5, H: 9, W: 13, Cout: 17, k: 3, stride: 2, pad: 1 }, // downsample, odd size
  { B: 1, Cin: 6, H: 16, W: 10, Cout: 15, k: 3, stride: 2, pad: 1 }, // downsample, even non-square
  { B: 1, Cin: 3, H: 5, W: 70, Cout: 29, k: 3, stride: 1, pad: 1 }, // rows wider than two panels
  { B: 1, Cin: 7, H: 11, W: 3, Cout: 33, k: 3, stride: 1, pad: 1 }, // narrow rows: panels span rows
  { B: 1, Cin: 16, H: 20, W: 23, Cout: 40, k: 3, stride: 1, pad: 1 }, // large enough to split threads
  { B: 1, Cin: 32, H: 6, W: 6, Cout: 3, k: 3, stride: 1, pad: 1 }, // Cout = 3 (VAE conv_out)
  { B: 2, Cin: 8, H: 6, W: 7, Cout: 30, k: 1, stride: 1, pad: 0 }, // 1×1: plain GEMM on NCHW
  { B: 1, Cin: 3, H: 10, W: 10, Cout: 5, k: 5, stride: 2, pad: 2 }, // generic kernel / stride
  { B: 1, Cin: 2, H: 1, W: 1, Cout: 4, k: 3, stride: 1, pad: 1 }, // 1×1 image
];

for (const isa of isaLevels()) {
  for (const dtype of ['F32', 'F16', 'BF16'] as WeightDType[]) {
    test(`conv2d ${isa} ${dtype} weights matches the reference`, (t) => {
      const failures: string[] = [];
      let seed = 11;
      for (const s of shapes) {
        const x = randomArray(s.B * s.Cin * s.H * s.W, seed++);
        const w = randomArray(s.Cout * s.Cin * s.k * s.k, seed++);
        const bias = randomArray(s.Cout, seed++);
        const K = s.Cin * s.k * s.k;
        const tol = dotTolerance(K, maxAbs(x), maxAbs(w)) + 1e-6;
        for (const threads of [1, 2]) {
          const args = { ...s, x, w, dtype, kh: s.k, kw: s.k, bias, threads, isa };
          const got = ops.conv2d(args);
          const want = ops.conv2d({ ...args, reference: true });
          const Ho = Math.floor((s.H + 2 * s.pad - s.k) / s.stride) + 1;
          const Wo = Math.floor((s.W + 2 * s.pad - s.k) / s.stride) + 1;
          t.is(got.length, s.B * s.Cout * Ho * Wo);
          const d = maxDiff(got, want);
          if (!(d <= tol)) failures.push(`${JSON.stringify(s)} threads=${threads}: ${d} > ${tol}`);
        }
      }
      t.deepEqual(failures, []);
    });
  }
}

test('conv2d without bias and a non-square kernel', (t) => {
  const s = { B: 1, Cin: 3, H: 7, W: 9, Cout: 6, kh: 1, kw: 3, stride: 1, pad: 1 };
  const x = randomArray(s.B * s.Cin * s.H * s.W, 5);
  const w = randomArray(s.Cout * s.Cin * s.kh * s.kw, 6);
  const got = ops.conv2d({ ...s, x, w, dtype: 'F32' });
  const want = ops.conv2d({ ...s, x, w, dtype: 'F32', reference: true });
  t.true(maxDiff(got, want) <= dotTolerance(9, 1, 1));
});

test('conv2d rejects a kernel larger than the padded input', (t) => {
  const x = new Float32Array(4);
  const w = new Float32Array(25);
  t.throws(
    () => ops.conv2d({ x, B: 1, Cin: 1, H: 2, W: 2, w, dtype: 'F32', Cout: 1, kh: 5, kw: 5, stride: 1, pad: 0 }),
    {
      message: /Expected an input at least as large as the kernel/,
    },
  );
});
