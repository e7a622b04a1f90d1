// The kernel benchmark's native entry points and case list (tiny sizes; timing is not checked).
import test from 'ava';
import { cases } from '../lib/cli/bench/kernels.js';
import { loadDevBinding } from '../lib/native/load.js';

interface Bench {
  fmaPeak(threads: number, ms: number): { gflops: number; isa: string; threads: number };
  benchKernel(
    name: string,
    params: Record<string, unknown>,
    threads: number,
    minMs: number,
  ): {
    seconds: number;
    flops: number;
    peakBytes: number;
    repeats: number;
  };
}
const bench = (): Bench => loadDevBinding<{ bench: Bench }>().bench;

test('fmaPeak measures a positive rate on the widest ISA', (t) => {
  const p = bench().fmaPeak(1, 5);
  t.true(p.gflops > 0);
  t.true(['avx512', 'avx2', 'scalar'].includes(p.isa));
});

test('benchKernel reports seconds, flop counts and bytes for each kernel', (t) => {
  const b = bench();
  const lin = b.benchKernel('linear', { M: 8, N: 16, K: 32, dtype: 'f16' }, 2, 1);
  t.is(lin.flops, 2 * 8 * 16 * 32);
  t.true(lin.seconds > 0 && lin.repeats >= 1 && lin.peakBytes > 0);
  const conv = b.benchKernel('conv2d', { Cin: 4, Cout: 8, H: 9, W: 7, k: 3, stride: 2, dtype: 'bf16' }, 1, 1);
  t.is(conv.flops, 2 * 8 * 5 * 4 * 4 * 9);
  const attn = b.benchKernel('attention', { heads: 2, nq: 8, nk: 5, headDim: 4 }, 1, 1);
  t.is(attn.flops, 4 * 2 * 8 * 5 * 4);
  const gn = b.benchKernel('group_norm', { C: 8, HW: 16, groups: 4 }, 1, 1);
  t.true(gn.seconds > 0);
  t.throws(() => b.benchKernel('nope', {}, 1, 1), { message: /Expected 'linear'/ });
});

test('the kernels suite covers the GEMM, conv and attention shapes at 1 and N threads', (t) => {
  const list = cases(2);
  t.true(list.some((c) => c.name === 'gemm' && c.shape === '4096x320x1280' && c.threads === 1));
  t.true(list.some((c) => c.name === 'gemm' && c.shape === '256x1280x5120' && c.dtype === 'f16'));
  t.true(list.some((c) => c.name.startsWith('conv') && c.shape === '128->128x512x512'));
  t.true(list.some((c) => c.name === 'attention_cross' && c.shape === '4096x77x8x40'));
  t.true(list.every((c) => /gemm|conv|attention|group_norm/.test(c.name)));
});
