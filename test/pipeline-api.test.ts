// Pipeline API behaviour: validation messages, abort, concurrency, event loop, dispose, CLI.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { LoadOptions } from '../lib/api.js';
import { DiffusionError, loadPipeline, type Pipeline, readPNGText } from '../lib/index.js';
import { fixture, maxAbsDiff, repoRoot } from './helpers/fixtures.js';

const SD1: LoadOptions = { config: { nativeSize: 256, textEncoder: { heads: 4 } } as never, threads: 2 };
const small = { prompt: 'a red apple', width: 64, height: 64, steps: 3, seed: 5, sampler: 'euler' as const };

let shared: Promise<Pipeline> | undefined;
function pipe(): Promise<Pipeline> {
  if (!shared) shared = loadPipeline(fixture('models/tiny-sd1.safetensors'), SD1);
  return shared;
}
test.after.always(async () => {
  if (shared) await (await shared).dispose();
});

const cases: [Record<string, unknown>, string][] = [
  [{ width: 700 }, 'Expected a multiple of 8 for width but received 700'],
  [{ height: 8 }, 'Expected a size in [64, 4096] for height but received 8'],
  [{ steps: 0 }, 'Expected an integer in [1, 1000] for steps but received 0'],
  [{ steps: Number.NaN }, 'Expected an integer in [1, 1000] for steps but received NaN'],
  [
    { sampler: 'foo' },
    'Expected one of euler, euler-a, heun, dpmpp-2m, dpmpp-2m-sde, ddim, pndm, lms, unipc, lcm for sampler but received "foo"',
  ],
  [
    { guidance: { scale: Number.POSITIVE_INFINITY } },
    'Expected a finite number in [0, 100] for guidance.scale but received Infinity',
  ],
  [{ guidance: { method: 'cfg++', scale: 2 } }, 'Expected a finite number in [0, 1] for guidance.scale but received 2'],
  [{ seed: -1 }, 'Expected an integer in [0, 2^64) for seed but received -1'],
  [
    { latents: new Float32Array(3) },
    'Expected a Float32Array of 256 values ([1, 4, 8, 8]) for latents but received a Float32Array of length 3',
  ],
  [{ prompt: 42 }, 'Expected a string for prompt but received 42'],
];
for (const [bad, message] of cases) {
  test(`rejects ${JSON.stringify(bad)} with a typed error`, async (t) => {
    const p = await pipe();
    const err = await t.throwsAsync(p.generate({ ...small, ...bad } as never), { instanceOf: DiffusionError });
    t.is(err?.message, message);
    t.is((err as DiffusionError).code, 'ERR_INVALID_ARGUMENT');
  });
}

test('an abort mid-run rejects with ERR_ABORTED within one step, and the pipeline still works', async (t) => {
  const p = await pipe();
  const ac = new AbortController();
  let seen = 0;
  const run = p.generate({
    ...small,
    steps: 20,
    signal: ac.signal,
    onProgress: (e) => {
      seen = e.step;
      if (e.step === 2) ac.abort();
    },
  });
  const err = await t.throwsAsync(run, { instanceOf: DiffusionError });
  t.is((err as DiffusionError).code, 'ERR_ABORTED');
  t.is(seen, 2);
  const ok = await p.generate(small);
  t.is(ok.image.width, 64);
});

test('concurrent calls queue and give the same results as sequential ones; the event loop keeps turning', async (t) => {
  const p = await pipe();
  const a = await p.generate(small);
  const b = await p.generate({ ...small, seed: 6 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const [a2, b2] = await Promise.all([p.generate(small), p.generate({ ...small, seed: 6 })]);
  clearInterval(timer);
  t.is(maxAbsDiff(a.latents, a2.latents), 0);
  t.is(maxAbsDiff(b.latents, b2.latents), 0);
  t.true(maxAbsDiff(a.latents, b.latents) > 0);
  t.true(ticks > 3, `timer ticked ${ticks} times during generation`);
});

test('progress reports steps, fraction and ETA; results carry seed, timings and PNG parameters', async (t) => {
  const p = await pipe();
  const events: { step: number; fraction: number; etaMs: number }[] = [];
  const r = await p.generate({ ...small, onProgress: (e) => events.push(e) });
  t.deepEqual(
    events.map((e) => e.step),
    [1, 2, 3],
  );
  t.is(events[2].fraction, 1);
  t.is(events[2].etaMs, 0);
  t.is(r.seed, 5);
  t.true(r.timings.totalMs > 0 && r.timings.perStepMs > 0 && r.timings.peakRssBytes > 0);
  t.is(r.image.data.length, 64 * 64 * 3);
  const png = r.image.toPNG();
  t.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  t.regex(readPNGText(png).parameters, /^a red apple\nSteps: 3, Sampler: euler, .*Seed: 5, Size: 64x64/);
});

test('a disposed pipeline rejects with ERR_DISPOSED', async (t) => {
  const p = await loadPipeline(fixture('models/tiny-sd1.safetensors'), SD1);
  await p.dispose();
  const err = await t.throwsAsync(p.generate(small), { instanceOf: DiffusionError });
  t.is((err as DiffusionError).code, 'ERR_DISPOSED');
});

test('loading a malformed or missing checkpoint gives typed errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nd-'));
  try {
    const missing = await t.throwsAsync(loadPipeline(join(dir, 'nope.safetensors')), { instanceOf: DiffusionError });
    t.is((missing as DiffusionError).code, 'ERR_IO');
    const bad = await t.throwsAsync(loadPipeline(fixture('tokenizer/clip_tokenizer.safetensors')), {
      instanceOf: DiffusionError,
    });
    t.is((bad as DiffusionError).code, 'ERR_UNSUPPORTED');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI writes a PNG with its parameters', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nd-cli-'));
  try {
    const out = join(dir, 'apple.png');
    const { stderr } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot, 'lib/cli/main.ts'),
        'a red apple',
        '-m',
        fixture('models/tiny-sd1.safetensors'),
        '--config',
        '{"nativeSize":256,"textEncoder":{"heads":4}}',
        '--size',
        '64',
        '--steps',
        '2',
        '--seed',
        '7',
        '-o',
        out,
      ],
      { cwd: repoRoot },
    );
    t.regex(stderr, /64x64, seed 7: .* s\/step/);
    const text = readPNGText(readFileSync(out));
    t.regex(text.parameters, /Steps: 2, .*Seed: 7, Size: 64x64/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
