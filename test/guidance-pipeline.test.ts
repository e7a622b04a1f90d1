// Guidance methods and attention scaling end to end through the pipeline on the tiny fixture models
// (few steps at 128-192 px so the file stays fast).
import test from 'ava';
import { loadPipeline } from '../lib/load-pipeline.js';
import type { GenerateOptions, ProgressEvent } from '../lib/options.js';
import type { Pipeline } from '../lib/pipeline.js';
import { fixture, maxAbsDiff } from './helpers/fixtures.js';

let sd1: Pipeline, sd2: Pipeline;
test.before(async () => {
  sd1 = await loadPipeline(fixture('models/tiny-sd1.safetensors'), {
    config: { nativeSize: 256, textEncoder: { heads: 4 } } as never,
  });
  sd2 = await loadPipeline(fixture('models/tiny-sd2.safetensors'), {
    prediction: 'v_prediction',
    config: { nativeSize: 256, unet: { numHeads: [2, 4, 8, 8], midHeads: 8 }, textEncoder: { heads: 2 } } as never,
  });
});
test.after.always(async () => {
  await sd1?.dispose();
  await sd2?.dispose();
});

const base: GenerateOptions = {
  prompt: 'a red cube on a table',
  negativePrompt: 'blurry',
  steps: 2,
  seed: 7,
  sampler: 'euler',
  width: 64,
  height: 64,
};
const models = () =>
  [
    ['tiny-sd1', sd1],
    ['tiny-sd2', sd2],
  ] as const;

for (const [w, h] of [
  [64, 64],
  [128, 64],
] as const) {
  test(`s-cfg runs end to end on both tiny models at ${w}x${h} and differs from cfg`, async (t) => {
    for (const [name, pipe] of models()) {
      const o = { ...base, width: w, height: h };
      const s = await pipe.generate({ ...o, guidance: { method: 's-cfg', scale: 7.5 } });
      const c = await pipe.generate({ ...o, guidance: { method: 'cfg', scale: 7.5 } });
      t.is(s.latents.length, 4 * (w / 8) * (h / 8));
      t.true(s.latents.every(Number.isFinite), name);
      const d = maxAbsDiff(s.latents, c.latents);
      t.log(`${name} ${w}x${h}: max |s-cfg − cfg| = ${d.toExponential(2)}`);
      t.true(d > 1e-4, `${name}: s-cfg differs from cfg`);
      t.regex(s.parameters, /Guidance: s-cfg/);
    }
  });
}

test('cfg++ with λ = 0 is the unconditional run (prompt = negative prompt, no guidance); λ > 0 differs', async (t) => {
  for (const [name, pipe] of models()) {
    for (const sampler of ['ddim', 'euler'] as const) {
      const o = { ...base, sampler };
      const pp0 = await pipe.generate({ ...o, guidance: { method: 'cfg++', scale: 0 } });
      const uncond = await pipe.generate({ ...o, prompt: o.negativePrompt!, negativePrompt: '', guidance: 1 });
      // batch 2 vs batch 1 U-Net calls: float32 reassociation only
      const d = maxAbsDiff(pp0.latents, uncond.latents);
      t.true(d < 1e-4, `${name}/${sampler}: ${d}`);
      const pp = await pipe.generate({ ...o, guidance: { method: 'cfg++', scale: 0.8 } });
      t.true(maxAbsDiff(pp.latents, pp0.latents) > 1e-4, `${name}/${sampler}: λ = 0.8 differs`);
      t.regex(pp.parameters, /CFG\+\+ lambda: 0\.8/);
    }
  }
});

test('guidance schedule and rescale: constant/φ = 0 are plain CFG; linear, cosine and φ > 0 change the result and are recorded', async (t) => {
  const cfgRun = await sd2.generate({ ...base, guidance: 7.5 });
  const constant = await sd2.generate({ ...base, guidance: { scale: 7.5, schedule: 'constant', rescale: 0 } });
  t.deepEqual(constant.latents, cfgRun.latents);
  for (const schedule of ['linear', 'cosine'] as const) {
    const r = await sd2.generate({ ...base, guidance: { scale: 7.5, schedule } });
    t.true(maxAbsDiff(r.latents, cfgRun.latents) > 1e-4, schedule);
    t.regex(r.parameters, new RegExp(`Guidance schedule: ${schedule}`));
  }
  const rescaled = await sd2.generate({ ...base, guidance: { scale: 7.5, rescale: 0.7 } });
  t.true(maxAbsDiff(rescaled.latents, cfgRun.latents) > 1e-4);
  t.regex(rescaled.parameters, /Guidance rescale: 0\.7/);
  // schedules scale s-cfg and cfg++ too
  for (const method of ['s-cfg', 'cfg++'] as const) {
    const scale = method === 'cfg++' ? 0.6 : 7.5;
    const a = await sd1.generate({ ...base, guidance: { method, scale } });
    const b = await sd1.generate({ ...base, guidance: { method, scale, schedule: 'cosine' } });
    t.true(maxAbsDiff(a.latents, b.latents) > 1e-4, method);
  }
});

test('characteristic guidance runs on ε and v models, reports iterations per step, differs from cfg', async (t) => {
  for (const [name, pipe] of models()) {
    const events: ProgressEvent[] = [];
    const r = await pipe.generate({
      ...base,
      guidance: { method: 'characteristic', scale: 7.5 },
      onProgress: (e) => events.push(e),
    });
    t.is(events.length, 2);
    for (const e of events) {
      t.true(Number.isInteger(e.iterations) && e.iterations! >= 1 && e.iterations! <= 51, `${name}: ${e.iterations}`);
      t.is(typeof e.converged, 'boolean', `${name}: converged is reported`);
    }
    t.log(`${name}: iterations per step ${events.map((e) => e.iterations).join(', ')}`);
    t.true(r.latents.every(Number.isFinite));
    const c = await pipe.generate({ ...base, guidance: 7.5 });
    t.true(maxAbsDiff(r.latents, c.latents) > 1e-5, `${name}: differs from cfg`);
    t.regex(r.parameters, /Guidance: characteristic/);
  }
});

test('characteristic guidance with w = 1 is the conditional prediction (the unguided run)', async (t) => {
  for (const [name, pipe] of models()) {
    const ch = await pipe.generate({ ...base, guidance: { method: 'characteristic', scale: 1 } });
    const plain = await pipe.generate({ ...base, guidance: 1 });
    // The two runs take different U-Net paths (batch 2 [uncond; cond] vs batch 1), whose float rounding
    // differs by ~1e-6 per pass and is amplified by the sampler; a wrong combine differs by > 1e-1.
    const d = maxAbsDiff(ch.latents, plain.latents);
    t.true(d < 1e-3, `${name}: ${d}`);
  }
});

test('attention scaling: entropy at the native size is the stock model bit for bit; auto follows the size', async (t) => {
  for (const [name, pipe] of models()) {
    const o = { ...base, steps: 1, width: 256, height: 256 };
    const none = await pipe.generate({ ...o, attentionScaling: 'none' });
    const entropy = await pipe.generate({ ...o, attentionScaling: 'entropy' });
    t.deepEqual(entropy.latents, none.latents, `${name}: N = T reproduces the stock model`);
    const small = { ...base, steps: 1, width: 64, height: 128 };
    const sNone = await pipe.generate({ ...small, attentionScaling: 'none' });
    const sAuto = await pipe.generate({ ...small });
    const sEntropy = await pipe.generate({ ...small, attentionScaling: 'entropy' });
    t.deepEqual(sAuto.latents, sEntropy.latents, `${name}: auto = entropy off the native size`);
    t.true(maxAbsDiff(sAuto.latents, sNone.latents) > 1e-6, `${name}: scaling changes the output off the native size`);
    t.regex(sEntropy.parameters, /Attention scaling: entropy/);
  }
});
