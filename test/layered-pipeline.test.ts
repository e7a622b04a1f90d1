// The embedded default model through the public API: loadPipeline() with no path → LayeredPipeline (models/default),
// generate() with every guidance method, schedules and rescale, entropy scaling, validation, abort, queueing,
// S-CFG's native attention capture, the CLI without -m and `bench quality --json`. Few steps: seconds in all.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { DiffusionError, LayeredPipeline, loadPipeline, readPNGText, torchRandn } from '../lib/index.js';
import type { GenerateOptions } from '../lib/options.js';
import { latentPreview } from '../lib/server/preview.js';
import { repoRoot } from './helpers/fixtures.js';
import { spawnTs, stop, waitForLine } from './helpers/processes.js';
import { getJSON, postJSON, readEvents } from './helpers/server.js';

const run = promisify(execFile);
const pipe = await loadPipeline(undefined, { threads: 2 });
test.after.always(() => pipe.dispose());

const PROMPT = 'a large red circle on the left';
const gen = (o: Partial<GenerateOptions> = {}) => pipe.generate({ prompt: PROMPT, steps: 4, seed: 5, ...o });
const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('loadPipeline() with no path is the embedded layered model', (t) => {
  t.true(pipe instanceof LayeredPipeline);
  t.is(pipe.info.family, 'layered');
  t.is(pipe.info.format, 'layered');
  t.is(pipe.info.nativeWidth, 64);
  t.is(pipe.info.predictionType, 'v_prediction');
  t.is(pipe.info.defaultSampler, 'ddim');
  t.true(pipe.info.parameters.unet > 1e6 && pipe.info.parameters.textEncoder > 1e4);
});

test('loadPipeline(folder) of a layered model is a LayeredPipeline too', async (t) => {
  const p = await loadPipeline(join(repoRoot, 'models', 'default'), { threads: 1 });
  try {
    t.true(p instanceof LayeredPipeline);
  } finally {
    await p.dispose();
  }
});

test('generate: a PNG-able image with its parameters, pixel-space latents, timings, progress', async (t) => {
  const events: { step: number; fraction: number; n: number }[] = [];
  const r = await gen({
    onProgress: (e) => events.push({ step: e.step, fraction: e.fraction, n: e.latents?.length ?? 0 }),
  });
  t.is(r.image.width, 64);
  t.is(r.image.height, 64);
  t.is(r.image.data.length, 64 * 64 * 3);
  t.is(r.latents.length, 3 * 64 * 64);
  t.is(r.seed, 5);
  const text = readPNGText(r.image.toPNG());
  t.is(text.parameters, r.parameters);
  t.regex(
    r.parameters,
    /^a large red circle on the left\nSteps: 4, Sampler: ddim, .*CFG scale: 1.5, Seed: 5, Size: 64x64/,
  );
  t.regex(r.parameters, /Model family: layered, Guidance: cfg, Attention scaling: none/);
  t.deepEqual(
    events.map((e) => e.step),
    [1, 2, 3, 4],
  );
  t.is(events[3].fraction, 1);
  t.true(events.every((e) => e.n === 3 * 64 * 64));
  t.true(r.timings.denoiseMs > 0 && r.timings.totalMs >= r.timings.denoiseMs);
  // the image is the final x̂0
  t.is(r.image.data[0], Math.min(255, Math.max(0, Math.round((r.latents[0] + 1) * 127.5))));
  t.regex(latentPreview(r.latents, 64, 64) ?? '', /^data:image\/png;base64,/);
});

test('seeded runs are deterministic; another seed differs; latents option = the seed noise', async (t) => {
  const a = await gen();
  const b = await gen();
  const c = await gen({ seed: 6 });
  t.true(same(a.latents, b.latents));
  t.false(same(a.latents, c.latents));
  const d = await gen({ seed: 999, latents: torchRandn([1, 3, 64, 64], 5) });
  t.true(same(a.latents, d.latents));
});

test('concurrent generate calls queue and give the sequential results', async (t) => {
  const [a, b] = await Promise.all([gen(), gen({ seed: 6 })]);
  t.true(same(a.latents, (await gen()).latents));
  t.true(same(b.latents, (await gen({ seed: 6 })).latents));
});

test('guidance: every method runs and differs from CFG; CFG++ λ = 0 is the unconditional run', async (t) => {
  const cfg = await gen({ guidance: { method: 'cfg', scale: 3 } });
  const scfg = await gen({ guidance: { method: 's-cfg', scale: 3 } });
  const iterations: number[] = [];
  const ch = await gen({
    guidance: { method: 'characteristic', scale: 3 },
    onProgress: (e) => {
      iterations.push(e.iterations ?? -1);
      t.is(typeof e.converged, 'boolean');
    },
  });
  const pp = await gen({ guidance: { method: 'cfg++', scale: 0.6 } });
  for (const [name, r] of [
    ['s-cfg', scfg],
    ['characteristic', ch],
    ['cfg++', pp],
  ] as const) {
    t.true(r.latents.every(Number.isFinite), name);
    t.true(maxDiff(r.latents, cfg.latents) > 1e-3, `${name} differs from cfg`);
    t.regex(r.parameters, new RegExp(`Guidance: ${name.replace(/\+/g, '\\+')}`));
  }
  t.is(iterations.length, 4);
  t.true(iterations.every((n) => n >= 0));
  const uncond = await gen({ guidance: { method: 'cfg', scale: 0 } });
  const pp0 = await gen({ guidance: { method: 'cfg++', scale: 0 } });
  t.true(same(pp0.latents, uncond.latents));
  t.false(same(uncond.latents, cfg.latents));
});

test('guidance schedule constant and rescale 0 are plain CFG; linear, cosine and rescale > 0 change it', async (t) => {
  const cfg = await gen({ guidance: 3 });
  const constant = await gen({ guidance: { scale: 3, schedule: 'constant', rescale: 0 } });
  t.true(same(cfg.latents, constant.latents));
  for (const g of [{ schedule: 'linear' }, { schedule: 'cosine' }, { rescale: 0.7 }] as const) {
    const r = await gen({ guidance: { scale: 3, ...g } });
    t.true(maxDiff(r.latents, cfg.latents) > 1e-4, JSON.stringify(g));
  }
  // w = 1 everywhere is the conditional prediction: rescale is then the identity
  t.true(same((await gen({ guidance: 1 })).latents, (await gen({ guidance: { scale: 1, rescale: 0.7 } })).latents));
});

test('entropy scaling: bit-identical at native size, on by default at other sizes', async (t) => {
  const none = await gen({ attentionScaling: 'none' });
  const entropy = await gen({ attentionScaling: 'entropy' });
  t.true(same(none.latents, entropy.latents));
  const big = await gen({ width: 128, height: 96 });
  t.is(big.image.width, 128);
  t.is(big.image.height, 96);
  t.regex(big.parameters, /Size: 128x96, .*Attention scaling: entropy/);
  const bigNone = await gen({ width: 128, height: 96, attentionScaling: 'none' });
  t.true(maxDiff(big.latents, bigNone.latents) > 1e-4);
  const half = await gen({ width: 32, height: 32 });
  t.is(half.image.data.length, 32 * 32 * 3);
});

test('validation: same messages as the SD pipeline; unsupported settings throw ERR_UNSUPPORTED', async (t) => {
  // a sampler the model cannot run is bad input naming the ones it can (info.samplers)
  const e1 = await t.throwsAsync(gen({ sampler: 'euler' }), { instanceOf: DiffusionError });
  t.is(e1.code, 'ERR_INVALID_ARGUMENT');
  t.is(e1.message, 'Expected one of ddim (the samplers this model supports) for sampler but received "euler"');
  t.deepEqual(pipe.info.samplers, ['ddim']);
  t.regex(e1.message, /euler/);
  const e2 = await t.throwsAsync(gen({ sampler: 'nope' as never }), { instanceOf: DiffusionError });
  t.is(e2.code, 'ERR_INVALID_ARGUMENT');
  t.regex(e2.message, /^Expected one of euler, .* for sampler but received/);
  const e3 = await t.throwsAsync(gen({ width: 72 }), { instanceOf: DiffusionError });
  t.is(e3.message, 'Expected a multiple of 16 for width but received 72');
  const e4 = await t.throwsAsync(gen({ eta: 0.5 }), { instanceOf: DiffusionError });
  t.is(e4.code, 'ERR_UNSUPPORTED');
  const e5 = await t.throwsAsync(gen({ guidance: { method: 'cfg++', scale: 2 } }), { instanceOf: DiffusionError });
  t.regex(e5.message, /^Expected a finite number in \[0, 1\] for guidance.scale/);
  const e6 = await t.throwsAsync(gen({ latents: new Float32Array(10) }), { instanceOf: DiffusionError });
  t.regex(e6.message, /\[1, 3, 64, 64\]/);
});

test('abort: before the start and between steps', async (t) => {
  const pre = new AbortController();
  pre.abort(new Error('stop'));
  const e1 = await t.throwsAsync(gen({ signal: pre.signal }), { instanceOf: DiffusionError });
  t.is(e1.code, 'ERR_ABORTED');
  const mid = new AbortController();
  let seen = 0;
  const e2 = await t.throwsAsync(
    gen({
      steps: 20,
      signal: mid.signal,
      onProgress: (e) => {
        seen = e.step;
        if (e.step === 2) mid.abort(new Error('enough'));
      },
    }),
    { instanceOf: DiffusionError },
  );
  t.is(e2.code, 'ERR_ABORTED');
  t.regex(e2.message, /enough/);
  t.is(seen, 2);
  // the pipeline still works
  t.is((await gen({ steps: 1 })).image.width, 64);
});

test('encodePrompt: [1, 77, 64] embeddings and the known-token count', async (t) => {
  const e = await pipe.encodePrompt('a red circle');
  t.is(e.embeddings.length, 77 * 64);
  t.is(e.tokens, 3);
  t.is(e.chunks, 1);
});

test('S-CFG capture: head-averaged self and cross probabilities of the 3 transformer blocks', async (t) => {
  const model = (pipe as LayeredPipeline).model;
  const ctx = await model.encodePrompts([PROMPT, '']);
  const z = torchRandn([2, 3, 64, 64], 1);
  const args = {
    z: [0, 1, 2].map((i) => {
      const k = 4 >> i;
      return new Float32Array(2 * 3 * (64 / k) * (64 / k)).fill(0.1);
    }),
    batch: 2,
    height: 64,
    width: 64,
    t: new Float32Array([0.5, 0.5]),
    context: ctx,
    contextTokens: 77,
  };
  args.z[2] = z;
  const plain = await model.forward(args);
  const r = await model.forwardWithAttention(args);
  t.true(same(plain[2], r.outputs[2]), 'capturing does not change the output');
  t.deepEqual(
    r.attention.map((a) => `${a.name}:${a.kind}:${a.h}x${a.w}`),
    [
      'input_blocks.1.1.transformer_blocks.0.attn1:self:8x8',
      'input_blocks.1.1.transformer_blocks.0.attn2:cross:8x8',
      'middle_block.1.transformer_blocks.0.attn1:self:4x4',
      'middle_block.1.transformer_blocks.0.attn2:cross:4x4',
      'output_blocks.0.1.transformer_blocks.0.attn1:self:8x8',
      'output_blocks.0.1.transformer_blocks.0.attn2:cross:8x8',
    ],
  );
  for (const a of r.attention) {
    const nk = a.kind === 'self' ? a.h * a.w : 77;
    t.is(a.probs.length, 2 * a.h * a.w * nk);
    for (let row = 0; row < 2 * a.h * a.w; row += 7) {
      let s = 0;
      for (let k = 0; k < nk; k++) s += a.probs[row * nk + k];
      t.true(Math.abs(s - 1) < 1e-4, `${a.name} row ${row} sums to ${s}`);
    }
  }
});

test('the CLI without -m writes a PNG from the embedded model', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nd-lwire-'));
  try {
    const out = join(dir, 'circle.png');
    const { stderr } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot, 'lib/cli/main.ts'),
        'a red circle',
        '--steps',
        '3',
        '--seed',
        '7',
        '--threads',
        '2',
        '--size',
        '128',
        '-o',
        out,
      ],
      { cwd: repoRoot },
    );
    t.regex(stderr, /128x128, seed 7: .* s\/step/);
    const text = readPNGText(readFileSync(out));
    t.regex(text.parameters, /^a red circle\nSteps: 3, Sampler: ddim, .*Seed: 7, Size: 128x128, Model family: layered/);
    t.regex(text.parameters, /Attention scaling: entropy/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench quality --json prints one valid row per cell (baseline = the same model gives the same numbers)', async (t) => {
  const { stdout, stderr } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'lib/cli/bench.ts'),
      'quality',
      '--samples',
      '4',
      '--steps',
      '2',
      '--threads',
      '2',
      '--json',
      '--baseline',
      join(repoRoot, 'models', 'default'),
    ],
    { cwd: repoRoot },
  );
  t.regex(stderr, /total [\d.]+ s for 32 samples/);
  const rows = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(
    rows.map((r) => r.cell),
    ['cfg', 's-cfg', 'cfg++', '2x', '2x-entropy', 'half', 'half-entropy', 'baseline-cfg'],
  );
  for (const r of rows) {
    t.is(r.samples, 4);
    for (const k of ['alignment', 'count', 'colours', 'objects', 'position', 'extraObjects', 'missingObjects'])
      t.true(r[k] >= 0 && r[k] <= 1, `${r.cell}.${k}`);
  }
  t.deepEqual(rows.map((r) => r.size).slice(0, 7), [64, 64, 64, 128, 128, 32, 32]);
  const { secondsPerImage: _a, ...cfg } = rows[0];
  const { secondsPerImage: _b, ...base } = rows[7];
  t.deepEqual({ ...base, cell: 'cfg', model: 'model' }, cfg);
});

test('serve without --model serves the embedded model as "default", with pixel-space previews', async (t) => {
  const child = spawnTs(join(repoRoot, 'lib', 'cli', 'main.ts'), ['serve', '--port', '0', '--threads', '1']);
  t.teardown(() => stop(child, 'SIGKILL'));
  const url = (await waitForLine(child, /^listening on /)).slice('listening on '.length).trim();
  t.is((await getJSON(`${url}/v1/models`)).body.data[0].id, 'default');
  const r = await postJSON(`${url}/jobs`, { prompt: 'a red circle', steps: 3, seed: 2, preview: true });
  t.is(r.status, 202);
  const events = await readEvents(`${url}${r.body.links.events}`);
  const progress = events.filter((e) => e.event === 'progress').map((e) => e.data);
  const preview = progress.at(-1).preview as string;
  t.regex(preview, /^data:image\/png;base64,/);
  // the preview is the 64x64 image itself (PNG width at byte 16)
  t.is(Buffer.from(preview.split(',')[1], 'base64').readUInt32BE(16), 64);
  t.is(events.at(-1)?.data.status, 'succeeded');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});
