// Attention-entropy scaling (docs/design.md §5.1) measured on the native U-Net through its attention-probability
// output. The random tiny models attend almost uniformly (row entropy ≈ ln N whatever the scale), so the
// entropy-preservation property is measured on a copy of tiny-sd1 whose self-attention is peaked: its
// attn1 to_q and to_k weights multiplied by PEAK (logits × PEAK²), written to a temp dir.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { entropyScale, entropyScaleFactor, nativeLatentSizeFor } from '../lib/guidance/attention-scaling.js';
import { detectModel } from '../lib/loading/detect.js';
import { type CapturedAttention, NativeUNet } from '../lib/native/unet.js';
import { fixture, readSafetensors } from './helpers/fixtures.js';
import { writeF32Safetensors } from './helpers/tiny-models.js';

const PEAK = 4;
const sd1Config = { nativeSize: 256, textEncoder: { heads: 4 } };
const dir = mkdtempSync(join(tmpdir(), 'nd-attn-scaling-'));
let peakedPath: string | undefined;
const peaked = () => {
  peakedPath ??= modifiedCopy('peaked', /attn1\.to_[qk]\.weight$/, PEAK);
  return peakedPath;
};
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of tiny-sd1 with every tensor matching `pattern` multiplied by `factor`. */
function modifiedCopy(name: string, pattern: RegExp, factor: number): string {
  const { tensors } = readSafetensors(fixture('models/tiny-sd1.safetensors'));
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [key, t] of Object.entries(tensors)) {
    const data = Float32Array.from(t.data as Float32Array);
    if (pattern.test(key)) for (let i = 0; i < data.length; i++) data[i] *= factor;
    out[key] = { shape: t.shape, data };
  }
  const path = join(dir, `${name}.safetensors`);
  writeF32Safetensors(path, out);
  return path;
}

function unetOf(path: string): NativeUNet {
  const d = detectModel(path, { config: sd1Config as never });
  return NativeUNet.create(d.weights, d.config.unet);
}

function seeded(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

/** One batch-1 forward at a latent of h×w (random sample and context, fixed per size). */
async function run(u: NativeUNet, h: number, w: number, nativeLatentSize?: { h: number; w: number }) {
  const rnd = seeded(h * 1000 + w);
  const sample = Float32Array.from({ length: 4 * h * w }, () => rnd() * 1.5);
  const context = Float32Array.from({ length: 77 * 32 }, () => rnd());
  return u.forward(
    { sample, sampleShape: [1, 4, h, w], timesteps: 500, context, contextShape: [1, 77, 32] },
    { nativeLatentSize, captureAttention: true },
  );
}

/** Mean row entropy (nats) of each captured self-attention layer. */
function selfEntropies(attention: CapturedAttention[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of attention) {
    if (a.kind !== 'self') continue;
    const n = a.h * a.w;
    let total = 0;
    for (let r = 0; r < n; r++) {
      let hsum = 0;
      for (let j = 0; j < n; j++) {
        const p = a.probs[r * n + j];
        if (p > 0) hsum -= p * Math.log(p);
      }
      total += hsum;
    }
    out.set(a.name, total / n);
  }
  return out;
}

test('λ = sqrt(ln N / ln T)/√d: 1/√d at N = T, monotone increasing in N, clamped at 2 tokens', (t) => {
  t.is(entropyScale(4096, 4096, 40), 1 / Math.sqrt(40));
  let prev = 0;
  for (let n = 1; n <= 20000; n += 37) {
    const f = entropyScaleFactor(n, 4096);
    t.true(n <= 2 ? f === prev || prev === 0 : f > prev, `n = ${n}`);
    prev = f;
  }
  t.is(entropyScaleFactor(1, 64), entropyScaleFactor(2, 64));
  t.true(entropyScaleFactor(9216, 4096) > 1 && entropyScaleFactor(1024, 4096) < 1);
  t.deepEqual(nativeLatentSizeFor('auto', { h: 64, w: 64 }, { h: 64, w: 64 }), undefined);
  t.deepEqual(nativeLatentSizeFor('auto', { h: 64, w: 96 }, { h: 64, w: 64 }), { h: 64, w: 64 });
  t.deepEqual(nativeLatentSizeFor('entropy', { h: 64, w: 64 }, { h: 64, w: 64 }), { h: 64, w: 64 });
  t.is(nativeLatentSizeFor('none', { h: 32, w: 96 }, { h: 64, w: 64 }), undefined);
});

test('cross-attention is untouched: with self-attention outputs zeroed, scaling changes the probabilities but not the output', async (t) => {
  const u = unetOf(modifiedCopy('no-attn1', /attn1\.to_out\.0\.(weight|bias)$/, 0));
  try {
    const stock = await run(u, 24, 40);
    const scaled = await run(u, 24, 40, { h: 32, w: 32 });
    t.deepEqual(Buffer.from(scaled.output.buffer), Buffer.from(stock.output.buffer));
    const selfStock = stock.attention.find((a) => a.kind === 'self')!;
    const selfScaled = scaled.attention.find((a) => a.kind === 'self')!;
    t.notDeepEqual(selfScaled.probs, selfStock.probs, 'the self-attention scale did change');
    const crossStock = stock.attention.filter((a) => a.kind === 'cross');
    const crossScaled = scaled.attention.filter((a) => a.kind === 'cross');
    crossStock.forEach((a, i) => t.deepEqual(crossScaled[i].probs, a.probs, a.name));
  } finally {
    u.dispose();
  }
});

test('a larger scale factor (smaller native size at a fixed size) lowers the self-attention entropy, monotonically', async (t) => {
  const u = unetOf(peaked());
  try {
    const series: Map<string, number>[] = [];
    for (const native of [32, 24, 16, 8])
      series.push(selfEntropies((await run(u, 32, 32, { h: native, w: native })).attention));
    for (const name of series[0].keys()) {
      const values = series.map((m) => m.get(name)!);
      t.log(`${name}: ${values.map((v) => v.toFixed(4)).join(' > ')}`);
      for (let i = 1; i < values.length; i++) t.true(values[i] < values[i - 1], name);
    }
  } finally {
    u.dispose();
  }
});

test("at 1.5x and 2x the native size, scaling keeps each layer's mean self-attention entropy closer to its native value (peaked model)", async (t) => {
  const u = unetOf(peaked());
  const native = { h: 32, w: 32 };
  try {
    const atNative = selfEntropies((await run(u, 32, 32)).attention);
    for (const side of [48, 64]) {
      const none = selfEntropies((await run(u, side, side)).attention);
      const scaled = selfEntropies((await run(u, side, side, native)).attention);
      for (const [name, h0] of atNative) {
        const dNone = Math.abs(none.get(name)! - h0),
          dScaled = Math.abs(scaled.get(name)! - h0);
        t.log(
          `${side / 32}x ${name}: native ${h0.toFixed(3)}, unscaled ${none.get(name)!.toFixed(3)}, scaled ${scaled.get(name)!.toFixed(3)}`,
        );
        t.true(dScaled < dNone, `${side / 32}x ${name}`);
      }
    }
  } finally {
    u.dispose();
  }
});
