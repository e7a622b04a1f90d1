// The layered model (models/default) run natively against the PyTorch forward of the same exported weights
// (test/fixtures/layered/parity.safetensors, written by training/export.py together with the model):
// text encoder, U-Net outputs at every scale (square batch 2; non-square with entropy-scaled self-attention),
// and a whole 4-step CFG sampling run through lib/samplers/layered.ts. Tolerances: 1e-4 max abs for one
// text-encoder / U-Net call (float32 reassociation); 2e-3 after 4 sampler steps (the TS sinc operator and
// schedule run in float64, torch's in float64/float32, then 4 U-Net calls amplify the differences).

import { join } from 'node:path';
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { loadLayeredModel, readLayeredConfig } from '../lib/loading/layered.js';
import { layeredEntropyScales, sampleLayered } from '../lib/samplers/layered.js';
import { alphaSigma, cosineLogSnr, shiftedLogSnr } from '../lib/schedules/shifted-cosine.js';
import { fixture, maxAbsDiff, readSafetensors, repoRoot } from './helpers/fixtures.js';

const modelDir = join(repoRoot, 'models', 'default');
const fx = readSafetensors(fixture('layered/parity.safetensors')).tensors;
const f32 = (name: string) => fx[name].data as Float32Array;
const ids = (name: string) => Int32Array.from(fx[name].data as number[]);
const model = loadLayeredModel(modelDir, { threads: 2 });
test.after.always(() => model.dispose());

test('schedule: clipped cosine logSNR, +2 ln 2 per halving, α² + σ² = 1', (t) => {
  t.true(Math.abs(cosineLogSnr(0) - 15) < 1e-9);
  t.true(Math.abs(cosineLogSnr(1) + 15) < 1e-9);
  t.true(Math.abs(cosineLogSnr(0.5)) < 1e-9);
  const cfg = { baseSize: 16, logsnrMin: -15, logsnrMax: 15 };
  t.true(Math.abs(shiftedLogSnr(0.3, 32, cfg) - shiftedLogSnr(0.3, 64, cfg) - 2 * Math.log(2)) < 1e-12);
  const { alpha, sigma } = alphaSigma(shiftedLogSnr(0.7, 64, cfg));
  t.true(Math.abs(alpha * alpha + sigma * sigma - 1) < 1e-12);
});

test('text encoder matches PyTorch (remapped vocabulary, causal CLIP)', async (t) => {
  for (const c of ['sq', 'ns']) {
    const id = ids(`${c}.ids`);
    const ctx = await model.encodeIds(id, id.length / 77);
    const err = maxAbsDiff(ctx, f32(`${c}.context`));
    t.log(c, 'context max abs', err);
    t.true(err <= 1e-4, `${c} context max abs ${err}`);
  }
});

test('tokenizer: prompts give the fixture ids; words outside the vocabulary are dropped', (t) => {
  t.deepEqual(Array.from(model.tokenize(['a small red circle on the left', ''])), Array.from(ids('sq.ids')));
  // "photorealistic" is in no training caption (shapes or emoji names), so its ids are dropped.
  t.deepEqual(Array.from(model.tokenize(['a red photorealistic apple'])), Array.from(model.tokenize(['a red apple'])));
  t.notDeepEqual(Array.from(model.tokenize(['a red apple'])), Array.from(model.tokenize(['a red'])));
  const long = model.tokenize([Array(100).fill('red').join(' ')]);
  t.is(long.length, 77);
  t.is(long[0], 49406);
  t.is(long[76], 49407);
});

for (const [c, h, w] of [
  ['sq', 64, 64],
  ['ns', 48, 80],
] as const) {
  test(`U-Net v at every scale matches PyTorch (${c}, ${h}x${w})`, async (t) => {
    const scales = model.config.scales.length;
    const tt = f32(`${c}.t`);
    const selfScales = fx[`${c}.self_attention_scales`] ? f32(`${c}.self_attention_scales`) : undefined;
    if (selfScales) {
      const ours = layeredEntropyScales(model.config, h, w);
      t.true(maxAbsDiff(ours, selfScales) < 1e-6, 'entropy scales');
    }
    const vs = await model.forward({
      z: Array.from({ length: scales }, (_, i) => f32(`${c}.z${i}`)),
      batch: tt.length,
      height: h,
      width: w,
      t: tt,
      context: f32(`${c}.context`),
      contextTokens: 77,
      selfAttentionScales: selfScales,
    });
    t.is(vs.length, scales);
    for (let i = 0; i < scales; i++) {
      const err = maxAbsDiff(vs[i], f32(`${c}.v${i}`));
      t.log(`scale ${i} max abs`, err);
      t.true(err <= 1e-4, `scale ${i}: max abs ${err}`);
    }
  });
}

test('layered sampler (TS loop + native U-Net) matches the PyTorch sampler', async (t) => {
  const id = ids('sample.ids');
  const context = await model.encodeIds(id, 1);
  const uncondContext = await model.encodePrompts(['']);
  const x0 = await sampleLayered(model, {
    noise: f32('sample.noise'),
    batch: 1,
    height: 64,
    width: 64,
    steps: 4,
    guidance: 3,
    context,
    uncondContext,
    contextTokens: 77,
  });
  const err = maxAbsDiff(x0, f32('sample.x0'));
  t.log('x0 max abs after 4 steps', err);
  t.true(err <= 2e-3, `max abs ${err}`);
});

test('bad inputs are typed errors, not crashes', async (t) => {
  const cfgErr = t.throws(() => readLayeredConfig(join(repoRoot, 'models', 'tokenizers')));
  t.true(cfgErr instanceof DiffusionError);
  const z = model.config.scales.map(() => new Float32Array(3));
  const err = await t.throwsAsync(
    model.forward({
      z,
      batch: 1,
      height: 60,
      width: 64,
      t: new Float32Array(1),
      context: new Float32Array(77 * 64),
      contextTokens: 77,
    }),
  );
  t.is((err as DiffusionError).code, 'ERR_INVALID_ARGUMENT');
  t.regex(err!.message, /^Expected /);
  const e2 = await t.throwsAsync(model.encodeIds(new Int32Array(78), 1));
  t.is((e2 as DiffusionError).code, 'ERR_INVALID_ARGUMENT');
});

test('generateLayered: seeded, any multiple-of-16 size, deterministic', async (t) => {
  const { generateLayered } = await import('../lib/samplers/layered-generate.js');
  const opts = { prompt: 'a large red circle in the middle', width: 48, height: 32, steps: 2, seed: 7 };
  const a = await generateLayered(model, opts);
  const b = await generateLayered(model, opts);
  t.is(a.data.length, 48 * 32 * 3);
  t.deepEqual(a.data, b.data);
  const c = await generateLayered(model, { ...opts, seed: 8 });
  t.notDeepEqual(a.data, c.data);
  await t.throwsAsync(generateLayered(model, { ...opts, width: 40 }), { code: 'ERR_INVALID_ARGUMENT' });
});

// The single-scale baseline (training --single-scale) has 24- and 48-channel attention layers with head_dim 16:
// heads = floor(C / head_dim) of C / heads channels each (24 → one 24-wide head), as training/model.py counts.
test('single-scale baseline with head sizes other than head_dim matches PyTorch (U-Net, entropy scales, sampler)', async (t) => {
  const dir = fixture('layered/baseline');
  const bx = readSafetensors(join(dir, 'parity.safetensors')).tensors;
  const b32 = (name: string) => bx[name].data as Float32Array;
  const baseline = loadLayeredModel(dir, { threads: 2 });
  try {
    for (const [c, h, w] of [
      ['sq', 64, 64],
      ['ns', 48, 80],
    ] as const) {
      const selfScales = bx[`${c}.self_attention_scales`] ? b32(`${c}.self_attention_scales`) : undefined;
      if (selfScales)
        t.true(maxAbsDiff(layeredEntropyScales(baseline.config, h, w), selfScales) < 1e-6, 'entropy scales');
      const tt = b32(`${c}.t`);
      const [v] = await baseline.forward({
        z: [b32(`${c}.z0`)],
        batch: tt.length,
        height: h,
        width: w,
        t: tt,
        context: b32(`${c}.context`),
        contextTokens: 77,
        selfAttentionScales: selfScales,
      });
      const err = maxAbsDiff(v, b32(`${c}.v0`));
      t.true(err <= 1e-4, `${c}: max abs ${err}`);
    }
    const id = Int32Array.from(bx['sample.ids'].data as number[]);
    const x0 = await sampleLayered(baseline, {
      noise: b32('sample.noise'),
      batch: 1,
      height: 64,
      width: 64,
      steps: 4,
      guidance: 3,
      context: await baseline.encodeIds(id, 1),
      uncondContext: await baseline.encodePrompts(['']),
      contextTokens: 77,
    });
    const err = maxAbsDiff(x0, b32('sample.x0'));
    t.true(err <= 2e-3, `sampler: max abs ${err}`);
  } finally {
    baseline.dispose();
  }
});
