// Parity of the native CLIP text encoders with transformers (tiny-sd1: HF CLIP names,
// tiny-sd2: OpenCLIP names), plus clip skip, f16 weights, the split q/k/v variant and errors.
// Tolerance: 1e-4 max abs for f32 (the fixtures' own 1-vs-2-threads difference is 0 for every
// text-encoder tensor; we measure about 1e-6).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { loadBinding } from '../lib/native/load.js';
import { ClipTextEncoder } from '../lib/native/text-encoder.js';
import type { NativeWeights } from '../lib/native/weights.js';
import { fixture, maxAbsDiff, readSafetensors } from './helpers/fixtures.js';
import {
  singleFileWeights,
  tinyFiles,
  tinySd1TextConfig,
  tinySd2TextConfig,
  writeF32Safetensors,
} from './helpers/tiny-models.js';

const F32_TOL = 1e-4;
// f16 weights are the f32 ones rounded: measured 2.8e-3 max abs on embeddings of max |x| 3.0.
const F16_TOL = 6e-3;
const ROW = 77 * 32;

const sd1 = new ClipTextEncoder(singleFileWeights(tinyFiles.sd1, 'cond_stage_model.'), tinySd1TextConfig, {
  threads: 2,
});
const sd2 = new ClipTextEncoder(singleFileWeights(tinyFiles.sd2, 'cond_stage_model.'), tinySd2TextConfig, {
  threads: 2,
});

function cases(model: string, name: string) {
  return readSafetensors(fixture(`${model}/${name}.safetensors`)).tensors;
}
const f32 = (t: { data: Float32Array | number[] }) => t.data as Float32Array;
const ids = (t: { data: Float32Array | number[] }) => t.data as number[];

async function expectCode(
  t: import('ava').ExecutionContext,
  p: Promise<unknown> | (() => unknown),
  code: string,
  message?: RegExp,
) {
  const err = typeof p === 'function' ? t.throws(p) : await t.throwsAsync(p);
  t.true(err instanceof DiffusionError, `expected a DiffusionError, got ${String(err)}`);
  t.is((err as DiffusionError).code, code as DiffusionError['code']);
  if (message) t.regex(err!.message, message);
}

for (const [model, te] of [
  ['tiny-sd1', sd1],
  ['tiny-sd2', sd2],
] as const) {
  for (const name of ['te_astronaut', 'te_long_truncated']) {
    test(`${model} ${name}: prompt and negative embeddings in one batch`, async (t) => {
      const c = cases(model, name);
      const out = await te.encode([...ids(c.input_ids), ...ids(c.negative_input_ids)]);
      t.is(out.length, 2 * ROW);
      const d = [
        maxAbsDiff(out.subarray(0, ROW), f32(c.prompt_embeds)),
        maxAbsDiff(out.subarray(ROW), f32(c.negative_prompt_embeds)),
      ];
      t.log(`max abs diff ${d.map((x) => x.toExponential(2)).join(', ')}`);
      t.true(Math.max(...d) <= F32_TOL);
    });
  }

  test(`${model} internals: embeddings, each layer's hidden state, last_hidden_state`, async (t) => {
    const c = cases(model, 'te_internals_astronaut');
    const input = ids(c.input_ids);
    const diffs = [
      maxAbsDiff(await te.encode(input, { layersToRun: 0, finalLayerNorm: false }), f32(c.embeddings_out)),
    ];
    for (let k = 1; k <= 4; k++) {
      const h = await te.encode(input, { layersToRun: k, finalLayerNorm: false });
      diffs.push(maxAbsDiff(h, f32(c.hidden_states).subarray((k - 1) * ROW, k * ROW)));
    }
    const last = await te.encode(input);
    diffs.push(maxAbsDiff(last, f32(c.last_hidden_state)));
    // pooler_output = last_hidden_state at the first <|endoftext|> (argmax id) position
    const eos = input.indexOf(Math.max(...input));
    diffs.push(maxAbsDiff(last.subarray(eos * 32, eos * 32 + 32), f32(c.pooler_output)));
    t.log(`max abs diffs ${diffs.map((x) => x.toExponential(2)).join(', ')}`);
    t.true(Math.max(...diffs) <= F32_TOL);
  });
}

test('tiny-sd1 clip skip 1 = penultimate layer then final layer norm', async (t) => {
  const c = cases('tiny-sd1', 'te_astronaut_clipskip1');
  const skipped = await sd1.encode(ids(c.input_ids), { clipSkip: 1 });
  t.true(maxAbsDiff(skipped, f32(c.prompt_embeds)) <= F32_TOL);
  t.deepEqual(await sd1.encode(ids(c.input_ids), { layersToRun: 3 }), skipped);
  // diffusers applies clip_skip to the prompt only: its negative embeddings are the full-depth ones.
  t.true(maxAbsDiff(await sd1.encode(ids(c.negative_input_ids)), f32(c.negative_prompt_embeds)) <= F32_TOL);
  // and clip skip really changes the result
  t.true(maxAbsDiff(skipped, await sd1.encode(ids(c.input_ids))) > 0.1);
});

test('tiny-sd1 f16 weights: close to the f32 reference', async (t) => {
  const te16 = new ClipTextEncoder(singleFileWeights(tinyFiles.sd1fp16, 'cond_stage_model.'), tinySd1TextConfig, {
    threads: 2,
  });
  const c = cases('tiny-sd1', 'te_astronaut');
  const out = await te16.encode([...ids(c.input_ids), ...ids(c.negative_input_ids)]);
  const d = Math.max(
    maxAbsDiff(out.subarray(0, ROW), f32(c.prompt_embeds)),
    maxAbsDiff(out.subarray(ROW), f32(c.negative_prompt_embeds)),
  );
  t.log(`f16 max abs diff ${d.toExponential(2)}`);
  t.true(d <= F16_TOL);
  t.true(d > 0); // the f16 file really is read as f16
  te16.dispose();
});

test('tiny-sd2 with split attn.{q,k,v}_proj weights equals the fused in_proj layout', async (t) => {
  const all = readSafetensors(fixture(tinyFiles.sd2)).tensors;
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, v] of Object.entries(all)) {
    if (!name.startsWith('cond_stage_model.model.') || name.includes('.resblocks.4.')) continue;
    const m = /^(.*\.attn\.)in_proj_(weight|bias)$/.exec(name);
    if (!m) {
      out[name] = { shape: v.shape, data: v.data as Float32Array };
      continue;
    }
    const rows = v.shape[0] / 3,
      per = (v.data as Float32Array).length / 3;
    // stored in the order q, v, k: not back to back, so the three projections run separately
    ['q', 'v', 'k'].forEach((p) => {
      const i = 'qkv'.indexOf(p);
      out[`${m[1]}${p}_proj.${m[2]}`] = {
        shape: [rows, ...v.shape.slice(1)],
        data: (v.data as Float32Array).slice(i * per, (i + 1) * per),
      };
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'nd-te-'));
  try {
    const path = join(dir, 'split.safetensors');
    writeF32Safetensors(path, out);
    const names = Object.keys(out);
    const split = new ClipTextEncoder(
      { files: [path], tensors: names.map((n) => [n, 0, n]) },
      { ...tinySd2TextConfig, layers: 4 },
      { threads: 1 },
    );
    const c = cases('tiny-sd2', 'te_astronaut');
    const a = await split.encode(ids(c.input_ids));
    t.true(maxAbsDiff(a, f32(c.prompt_embeds)) <= F32_TOL);
    t.true(maxAbsDiff(a, await sd2.encode(ids(c.input_ids))) <= 1e-6); // three projections vs one: summation order may differ
    split.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tiny-sd2 with q/k/v mapped as row ranges of in_proj (the canonical split) equals the fused layout', async (t) => {
  const w = singleFileWeights(tinyFiles.sd2, 'cond_stage_model.');
  const tensors: NativeWeights['tensors'] = [];
  for (const [name, file, tensor] of w.tensors) {
    const m = /^(.*\.attn\.)in_proj_(weight|bias)$/.exec(name);
    if (!m) tensors.push([name, file, tensor]);
    else
      ['q', 'k', 'v'].forEach((p, i) => tensors.push([`${m[1]}${p}_proj.${m[2]}`, file, tensor, 32 * i, 32 * (i + 1)]));
  }
  const split = new ClipTextEncoder({ files: w.files, tensors }, tinySd2TextConfig, { threads: 1 });
  const c = cases('tiny-sd2', 'te_astronaut');
  t.deepEqual(await split.encode(ids(c.input_ids)), await sd2.encode(ids(c.input_ids)));
  split.dispose();
});

test('concurrent calls serialise and give the sequential results', async (t) => {
  const c = cases('tiny-sd1', 'te_long_truncated');
  const rows = [ids(c.input_ids), ids(c.negative_input_ids), [...ids(c.input_ids), ...ids(c.negative_input_ids)]];
  const together = await Promise.all(rows.map((r) => sd1.encode(r)));
  for (let i = 0; i < rows.length; i++) t.true(maxAbsDiff(together[i], await sd1.encode(rows[i])) <= 1e-6);
});

test('bad ids, lengths and options reject with typed errors', async (t) => {
  const good = new Int32Array(77).fill(49407);
  await expectCode(
    t,
    sd1.encode(Int32Array.from(good).fill(49408, 5, 6)),
    'ERR_INVALID_ARGUMENT',
    /^Expected token ids in \[0, 49408\) for input ids\[5\] but received 49408$/,
  );
  await expectCode(t, sd1.encode(Int32Array.from(good).fill(-1, 0, 1)), 'ERR_INVALID_ARGUMENT', /but received -1/);
  await expectCode(
    t,
    sd1.encode(new Int32Array(76)),
    'ERR_INVALID_ARGUMENT',
    /^Expected a multiple of 77 token ids for ids/,
  );
  await expectCode(
    t,
    sd1.encode([...good].fill(2 ** 32 + 5, 7, 8)),
    'ERR_INVALID_ARGUMENT',
    /^Expected token ids in \[0, 49408\) for ids\[7\] but received 4294967301$/,
  );
  await expectCode(t, sd1.encode([...good].fill(1.5, 0, 1)), 'ERR_INVALID_ARGUMENT', /for ids\[0\] but received 1\.5$/);
  await expectCode(
    t,
    sd1.encode(good, { layersToRun: 5 }),
    'ERR_INVALID_ARGUMENT',
    /options\.layersToRun but received 5/,
  );
  await expectCode(t, sd1.encode(good, { clipSkip: 5 }), 'ERR_INVALID_ARGUMENT', /options\.clipSkip/);
  // the raw binding checks types itself
  const { TextEncoder } = loadBinding<{
    TextEncoder: new (...a: unknown[]) => { encode(...a: unknown[]): Promise<unknown> };
  }>();
  const raw = new TextEncoder(singleFileWeights(tinyFiles.sd1, 'cond_stage_model.'), tinySd1TextConfig, { threads: 1 });
  for (const [args, re] of [
    [[new Float32Array(77), 1], /^Expected an Int32Array for ids but received/],
    [[good, 2], /^Expected 154 ids \(batch 2 x 77 tokens\) for ids but received an Int32Array of length 77$/],
    [[good, 0], /^Expected an integer in \[1, 65536\] for batch but received 0$/],
    [[good, 1, { finalLayerNorm: 1 }], /^Expected a boolean for options\.finalLayerNorm/],
  ] as const) {
    const err = await t.throwsAsync(raw.encode(...args));
    t.is((err as { code?: string }).code, 'ERR_INVALID_ARGUMENT');
    t.regex(err!.message, re);
  }
});

test('bad configs and mismatched weights throw typed errors naming the problem', async (t) => {
  const w1 = singleFileWeights(tinyFiles.sd1, 'cond_stage_model.');
  await expectCode(
    t,
    () => new ClipTextEncoder(w1, { ...tinySd1TextConfig, heads: 3 }),
    'ERR_INVALID_ARGUMENT',
    /^Expected a head count dividing hidden \(32\) for config\.heads but received 3$/,
  );
  await expectCode(
    t,
    () => new ClipTextEncoder(w1, { ...tinySd1TextConfig, hidden: 64, heads: 4 }),
    'ERR_SHAPE_MISMATCH',
    /^Expected shape \[49408, 64\] for weight "cond_stage_model\.transformer\.text_model\.embeddings\.token_embedding\.weight" but received \[49408, 32\]$/,
  );
  await expectCode(
    t,
    () => new ClipTextEncoder(w1, { ...tinySd1TextConfig, layers: 5 }),
    'ERR_INVALID_FILE',
    /Missing weight "cond_stage_model\.transformer\.text_model\.encoder\.layers\.4\./,
  );
  await expectCode(
    t,
    () => new ClipTextEncoder(w1, { ...tinySd1TextConfig, kind: 'openclip' }),
    'ERR_INVALID_FILE',
    /Missing weight "cond_stage_model\.model\./,
  );
  await expectCode(
    t,
    () => new ClipTextEncoder(w1, { ...tinySd1TextConfig, activation: 'relu' as 'gelu' }),
    'ERR_INVALID_ARGUMENT',
    /"quick_gelu" or "gelu" for config\.activation/,
  );
  await expectCode(
    t,
    () => new ClipTextEncoder(w1, tinySd1TextConfig, { threads: -1 }),
    'ERR_INVALID_ARGUMENT',
    /options\.threads/,
  );
});

test('dispose: later calls reject with ERR_DISPOSED; a running call finishes', async (t) => {
  const te = new ClipTextEncoder(singleFileWeights(tinyFiles.sd2, 'cond_stage_model.'), tinySd2TextConfig, {
    threads: 1,
  });
  const c = cases('tiny-sd2', 'te_astronaut');
  const running = te.encode(ids(c.input_ids));
  await te[Symbol.asyncDispose]();
  t.true(te.disposed);
  t.true(maxAbsDiff(await running, f32(c.prompt_embeds)) <= F32_TOL);
  await expectCode(t, te.encode(ids(c.input_ids)), 'ERR_DISPOSED');
  te.dispose(); // idempotent
});

test('calls queued before dispose all complete, in order', async (t) => {
  const te = new ClipTextEncoder(singleFileWeights(tinyFiles.sd1, 'cond_stage_model.'), tinySd1TextConfig, {
    threads: 1,
  });
  const c = cases('tiny-sd1', 'te_astronaut');
  const done: number[] = [];
  const calls = [0, 1, 2, 3, 4].map((i) =>
    te.encode(ids(i % 2 ? c.negative_input_ids : c.input_ids)).then((r) => {
      done.push(i);
      return r;
    }),
  );
  te.dispose();
  const results = await Promise.all(calls);
  t.deepEqual(done, [0, 1, 2, 3, 4]);
  t.true(maxAbsDiff(results[4], f32(c.prompt_embeds)) <= F32_TOL);
  t.true(maxAbsDiff(results[3], f32(c.negative_prompt_embeds)) <= F32_TOL);
  await expectCode(t, te.encode(ids(c.input_ids)), 'ERR_DISPOSED');
});
