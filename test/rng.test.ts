import { readFileSync } from 'node:fs';
import test from 'ava';
import { fmaf, logAvx } from '../lib/noise/avx-mathfun.js';
import { Mt19937 } from '../lib/noise/mt19937.js';
import { TorchGenerator, torchRandn } from '../lib/noise/torch-rng.js';
import { fixture, readSafetensors } from './helpers/fixtures.js';

const index = JSON.parse(
  readFileSync(fixture('index.json'), 'utf8').replace(/([:[,]\s*)(-?Infinity|NaN)/g, '$1null'),
) as { cases: any[] };
const rngCase = index.cases.find((c) => c.id === 'rng/torch_randn');
const tensors = readSafetensors(fixture('rng/torch_randn.safetensors')).tensors;

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}
function countBitMismatches(got: Float32Array, expected: Float32Array): number {
  const g = bits(got),
    e = bits(expected);
  let n = Math.abs(g.length - e.length);
  for (let i = 0; i < Math.min(g.length, e.length); i++) if (g[i] !== e[i]) n++;
  return n;
}

for (const c of rngCase.inputs.cases as { tensor: string; seed: number; shape: number[] }[]) {
  test(`torch.randn bit-exact: ${c.tensor}`, (t) => {
    const gen = new TorchGenerator(c.seed);
    const names = c.tensor.split(' / ');
    for (const name of names) {
      const expected = tensors[name].data as Float32Array;
      t.deepEqual(tensors[name].shape, c.shape);
      const got = gen.randn(c.shape);
      t.is(countBitMismatches(got, expected), 0, `${name}: float32 bit patterns differ`);
    }
  });
}

test('a batch of 2 is one draw of twice the size, not two seeded draws', (t) => {
  const two = tensors.seed0_2x4x32x32.data as Float32Array;
  const one = tensors.seed0_1x4x32x32.data as Float32Array;
  t.is(countBitMismatches(two.subarray(0, 4096), one), 0);
  t.true(countBitMismatches(two.subarray(4096), one) > 4000);
});

test('mt19937 matches the C++ std::mt19937 reference value (10000th output of seed 5489)', (t) => {
  const mt = new Mt19937(5489);
  let v = 0;
  for (let i = 0; i < 10000; i++) v = mt.next();
  t.is(v, 4123659995);
});

test('seeds: low 32 bits seed the engine; negatives wrap as uint64; out of range rejected', (t) => {
  const a = torchRandn([20], 42);
  t.deepEqual(torchRandn([20], 2n ** 32n + 42n), a);
  t.deepEqual(torchRandn([20], 2 ** 40 + 42), a);
  t.deepEqual(torchRandn([20], -1), torchRandn([20], 2n ** 64n - 1n));
  t.deepEqual(torchRandn([20], -1), torchRandn([20], 4294967295));
  t.is(new TorchGenerator(-1).seed, 2n ** 64n - 1n);
  t.throws(() => new TorchGenerator(2n ** 64n), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => new TorchGenerator(1.5), { code: 'ERR_INVALID_ARGUMENT' } as never);
  t.throws(() => new TorchGenerator(0).randn([2, -1]), { code: 'ERR_INVALID_ARGUMENT' } as never);
});

test('scalar path caches the second Box-Muller value across calls, manualSeed clears it', (t) => {
  const pair = new TorchGenerator(7).randn([2]);
  const g = new TorchGenerator(7);
  const first = g.randn([1]);
  const second = g.randn([1]);
  t.deepEqual([first[0], second[0]], [pair[0], pair[1]]);
  g.randn([1]);
  g.manualSeed(7);
  t.deepEqual(g.randn([2]), pair);
  t.is(new TorchGenerator(0).randn([0]).length, 0);
});

test('samples look standard normal (mean, variance) on a large draw', (t) => {
  const x = torchRandn([1, 4, 128, 128], 3);
  let s = 0,
    s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const mean = s / x.length,
    variance = s2 / x.length - mean * mean;
  t.true(Math.abs(mean) < 0.03, `mean ${mean}`);
  t.true(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
});

test('float32 helpers: fmaf rounds once, logAvx is close to ln', (t) => {
  // a*b = 64 - 2^-30; + c lands just below the midpoint 2^30 + 192. Rounding the double sum first hits the
  // midpoint exactly and ties to even (2^30 + 256); one rounding gives 2^30 + 128.
  const a = 1 + 2 ** -18,
    b = 64 - 2 ** -12,
    c = 2 ** 30 + 128;
  t.is(fmaf(a, b, c), 2 ** 30 + 128);
  t.is(Math.fround(a * b + c), 2 ** 30 + 256);
  t.is(fmaf(a, b, -c), -(2 ** 30 + 128));
  t.is(Math.fround(a * b - c), -(2 ** 30));
  t.is(fmaf(3, 5, 7), 22);
  for (const x of [1e-7, 0.1, 0.5, 0.7, 0.99999994, 1])
    t.true(Math.abs(logAvx(Math.fround(x)) - Math.log(Math.fround(x))) < 1e-6 * Math.max(1, Math.abs(Math.log(x))));
});

test('more torch draws (test/data, from Debian torch 1.13.1): big and negative seeds, sizes 1..39, mixed sequences', (t) => {
  const data = JSON.parse(readFileSync(new URL('./data/torch_randn_extra.json', import.meta.url), 'utf8')) as {
    cases: { name: string; seed: string; shapes: number[][]; bits: number[][] }[];
  };
  t.true(data.cases.length >= 50);
  for (const c of data.cases) {
    const g = new TorchGenerator(BigInt(c.seed));
    c.shapes.forEach((shape, k) => {
      const got = bits(g.randn(shape));
      const wrong = c.bits[k].filter((b, i) => b !== got[i]).length + Math.abs(c.bits[k].length - got.length);
      t.is(wrong, 0, `${c.name} draw ${k} ${JSON.stringify(shape)}`);
    });
  }
});
