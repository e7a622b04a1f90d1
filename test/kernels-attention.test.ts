// Fused attention vs the naive double-precision oracle (nd::ref::attention).
// Tolerances: V is in [-1, 1]; the f32 logits carry a relative error of ~1e-7 (dot product
// rounding, scale·log2(e) folded into Q), i.e. an absolute error growing with the largest
// logit L, and exp2 adds 2.4e-7 relative. So outputs must agree to 1e-6 + 4e-7·L, and
// head-averaged probabilities (<= 1) to 5e-7 + 4e-7·L.
import test from 'ava';
import { type AttentionArgs, type KernelIsa, maxAbsDiff, opsMisc, randomArray } from './helpers/ops-misc.js';

const isas: KernelIsa[] = opsMisc.kernelIsas().available;

interface Case {
  batch: number;
  heads: number;
  nq: number;
  nk: number;
  headDim: number;
}
const cases: Case[] = [
  { batch: 1, heads: 1, nq: 1, nk: 1, headDim: 4 },
  { batch: 1, heads: 3, nq: 17, nk: 1, headDim: 4 },
  { batch: 1, heads: 1, nq: 1, nk: 77, headDim: 8 },
  { batch: 2, heads: 1, nq: 65, nk: 129, headDim: 16 },
  { batch: 2, heads: 8, nq: 64, nk: 77, headDim: 40 }, // cross-attention shape
  { batch: 1, heads: 4, nq: 300, nk: 200, headDim: 40 }, // query-tile groups with a partial last tile
  { batch: 1, heads: 2, nq: 100, nk: 77, headDim: 64 },
  { batch: 1, heads: 1, nq: 70, nk: 33, headDim: 80 },
  { batch: 1, heads: 2, nq: 40, nk: 50, headDim: 160 },
];

function packed(c: Case, seed: number, scale: number, extra: Partial<AttentionArgs> = {}): AttentionArgs {
  const C = c.heads * c.headDim;
  return {
    ...c,
    q: randomArray(c.batch * c.nq * C, seed),
    k: randomArray(c.batch * c.nk * C, seed + 1),
    v: randomArray(c.batch * c.nk * C, seed + 2),
    scale,
    ...extra,
  };
}

/** Largest |scale · q·k| over all (batch, head, query, key). */
function maxLogit(a: AttentionArgs): number {
  const C = a.heads * a.headDim;
  let m = 0;
  for (let b = 0; b < a.batch; b++)
    for (let h = 0; h < a.heads; h++)
      for (let i = 0; i < a.nq; i++)
        for (let j = 0; j < a.nk; j++) {
          let dot = 0;
          for (let e = 0; e < a.headDim; e++)
            dot += a.q[(b * a.nq + i) * C + h * a.headDim + e] * a.k[(b * a.nk + j) * C + h * a.headDim + e];
          m = Math.max(m, Math.abs(dot * a.scale));
        }
  return m;
}
const outTol = (logit: number) => 1e-6 + 4e-7 * logit;
const probTol = (logit: number) => 5e-7 + 4e-7 * logit;

function rowSumError(probs: Float32Array, rows: number, nk: number): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < nk; j++) s += probs[r * nk + j];
    worst = Math.max(worst, Math.abs(s - 1));
  }
  return worst;
}

for (const [ci, c] of cases.entries()) {
  const title = `b${c.batch} h${c.heads} nq${c.nq} nk${c.nk} d${c.headDim}`;
  test(`attention ${title} matches the reference on every ISA, 1 and 2 threads, probs on and off`, (t) => {
    const scales = [1 / Math.sqrt(c.headDim), 2 / Math.sqrt(c.headDim) + ci * 0.1, 1];
    for (const [si, scale] of scales.entries()) {
      const args = packed(c, 100 * ci + 10 * si, scale);
      const ref = opsMisc.attention({ ...args, probs: true, reference: true });
      t.true(rowSumError(ref.probs!, c.batch * c.nq, c.nk) < 1e-5);
      const L = maxLogit(args);
      for (const isa of isas)
        for (const threads of [1, 2]) {
          const withProbs = opsMisc.attention({ ...args, probs: true, isa, threads });
          const plain = opsMisc.attention({ ...args, isa, threads });
          const where = `${isa} threads ${threads} scale ${scale}`;
          t.true(maxAbsDiff(plain.out, ref.out) < outTol(L), `${where}: out ${maxAbsDiff(plain.out, ref.out)}`);
          t.deepEqual(withProbs.out, plain.out, `${where}: probs pass changes nothing else`);
          t.is(plain.probs, undefined);
          const pd = maxAbsDiff(withProbs.probs!, ref.probs!);
          t.true(pd < probTol(L), `${where}: probs ${pd}`);
          t.true(rowSumError(withProbs.probs!, c.batch * c.nq, c.nk) < 1e-5, `${where}: rows sum to 1`);
        }
    }
  });
}

test('attention reads q, k and v from one packed qkv buffer (row stride 3C) and K/V with row stride 2C', (t) => {
  const c = { batch: 2, heads: 8, nq: 90, nk: 90, headDim: 8 };
  const C = c.heads * c.headDim;
  const qkv = randomArray(c.batch * c.nq * 3 * C, 7);
  const split = (part: number) => {
    const out = new Float32Array(c.batch * c.nq * C);
    for (let r = 0; r < c.batch * c.nq; r++)
      out.set(qkv.subarray(r * 3 * C + part * C, r * 3 * C + (part + 1) * C), r * C);
    return out;
  };
  const scale = 0.3;
  const separate = opsMisc.attention({ ...c, q: split(0), k: split(1), v: split(2), scale, probs: true });
  const fused = opsMisc.attention({
    ...c,
    q: qkv,
    k: qkv,
    v: qkv,
    qOffset: 0,
    kOffset: C,
    vOffset: 2 * C,
    qRow: 3 * C,
    kRow: 3 * C,
    vRow: 3 * C,
    scale,
    probs: true,
    threads: 2,
  });
  t.deepEqual(fused.out, separate.out);
  t.deepEqual(fused.probs, separate.probs);

  // Cross-attention: K and V interleaved in one [batch, 77, 2C] tensor, K/V batch stride 0 for batch 2.
  const kv = randomArray(77 * 2 * C, 8);
  const q = randomArray(c.batch * c.nq * C, 9);
  const args = {
    ...c,
    nk: 77,
    q,
    k: kv,
    v: kv,
    kOffset: 0,
    vOffset: C,
    kRow: 2 * C,
    vRow: 2 * C,
    kBatch: 0,
    vBatch: 0,
    scale,
  };
  const ref = opsMisc.attention({ ...args, reference: true });
  t.true(maxAbsDiff(opsMisc.attention({ ...args, threads: 2 }).out, ref.out) < 2e-6);
});

test('attention stays finite and within the logit-scaled tolerance with logits in the thousands', (t) => {
  const c = { batch: 1, heads: 2, nq: 70, nk: 130, headDim: 16 };
  const args = packed(c, 42, 1);
  args.q = args.q.map((x) => x * 40);
  args.k = args.k.map((x) => x * 40); // |logits| up to ~ 40·40·16 = 25600
  const ref = opsMisc.attention({ ...args, probs: true, reference: true });
  const L = maxLogit(args);
  t.true(L > 1000);
  for (const isa of isas) {
    const r = opsMisc.attention({ ...args, probs: true, isa, threads: 2 });
    t.true(r.out.every(Number.isFinite) && r.probs!.every(Number.isFinite), isa);
    t.true(maxAbsDiff(r.out, ref.out) < outTol(L), `${isa}: ${maxAbsDiff(r.out, ref.out)}`);
    t.true(maxAbsDiff(r.probs!, ref.probs!) < probTol(L), isa);
    t.true(rowSumError(r.probs!, c.nq, c.nk) < 1e-5, isa);
  }
});

test('attention key tiles of any size give the same result', (t) => {
  const c = { batch: 1, heads: 2, nq: 50, nk: 201, headDim: 40 };
  const args = packed(c, 5, 0.2);
  const ref = opsMisc.attention({ ...args, reference: true });
  for (const kTile of [1, 5, 64, 200, 1000]) {
    const r = opsMisc.attention({ ...args, kTile, threads: 2 });
    t.true(maxAbsDiff(r.out, ref.out) < 2e-6, `kTile ${kTile}`);
  }
});

test('16384-token self-attention (d 40) completes with scratch far below N²', (t) => {
  const c = { batch: 1, heads: 1, nq: 16384, nk: 16384, headDim: 40 };
  const scratch = opsMisc.attentionScratchBytes({ ...c, threads: 2 });
  t.true(scratch < 64 * 2 ** 20, `scratch ${scratch} bytes`);
  t.true(scratch < 1e-3 * c.nq * c.nk * 4);
  // Scratch does not grow with the token count (only the probs row statistics, O(nq), would).
  t.is(opsMisc.attentionScratchBytes({ ...c, nq: 65536, nk: 65536, threads: 2 }), scratch);
  t.true(opsMisc.attentionScratchBytes({ ...c, nq: 1024, threads: 2 }) <= scratch);
  t.true(opsMisc.attentionScratchBytes({ ...c, threads: 2, probs: true }) < scratch + 16384 * 8 + 1);

  const args = packed(c, 11, 1 / Math.sqrt(40));
  const { out } = opsMisc.attention({ ...args, threads: 2 });
  // Spot-check rows against a direct softmax in double precision.
  for (const i of [0, 777, 8191, 16383]) {
    const logits = new Float64Array(c.nk);
    let max = -Infinity;
    for (let j = 0; j < c.nk; j++) {
      let dot = 0;
      for (let e = 0; e < 40; e++) dot += args.q[i * 40 + e] * args.k[j * 40 + e];
      logits[j] = dot * args.scale;
      max = Math.max(max, logits[j]);
    }
    let sum = 0;
    const acc = new Float64Array(40);
    for (let j = 0; j < c.nk; j++) {
      const p = Math.exp(logits[j] - max);
      sum += p;
      for (let e = 0; e < 40; e++) acc[e] += p * args.v[j * 40 + e];
    }
    for (let e = 0; e < 40; e++) t.true(Math.abs(out[i * 40 + e] - acc[e] / sum) < 2e-6, `row ${i} col ${e}`);
  }
});

test('attention rejects bad shapes with typed errors', (t) => {
  const c = { batch: 1, heads: 2, nq: 4, nk: 4, headDim: 8 };
  const args = packed(c, 1, 1);
  t.throws(() => opsMisc.attention({ ...args, qRow: 8 }), { code: 'ERR_INVALID_ARGUMENT', message: /Expected/ });
  t.throws(() => opsMisc.attention({ ...args, k: args.k.subarray(1) }), { code: 'ERR_SHAPE_MISMATCH' });
  t.throws(() => opsMisc.attention({ ...args, nk: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => opsMisc.attention({ ...args, scale: Number.NaN }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => opsMisc.attention({ ...args, isa: 'bogus' as KernelIsa }), { code: 'ERR_INVALID_ARGUMENT' });
});
