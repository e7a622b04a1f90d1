// `bench guidance` end to end on a narrowed random SD 1.5 (width scale 1/8) at 64x64: the suite runs from
// source with tsx in a child process (it forks its own measuring child) and prints one JSON array.
// Timing values are not checked against targets here (noise at this size), only their shape and sanity.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { GuidanceRow } from '../lib/cli/bench/guidance.js';
import { METHODS } from '../lib/cli/bench/guidance.js';
import { repoRoot } from './helpers/fixtures.js';

const run = promisify(execFile);
const bench = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'lib/cli/bench.ts', 'guidance', ...args], {
    cwd: repoRoot,
    maxBuffer: 16 << 20,
  });

test('bench guidance --json: every method, finite overheads, characteristic iterations', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'nd-bench-guidance-'));
  try {
    const { stdout } = await bench(
      '--json',
      '--cache',
      cache,
      '--width-scale',
      '0.125',
      '--size',
      '64',
      '--steps',
      '2',
      '--threads',
      '1',
    );
    const lines = stdout.trim().split('\n');
    t.is(lines.length, 1, 'stdout is exactly one JSON line');
    const rows = JSON.parse(lines[0]) as GuidanceRow[];
    t.true(Array.isArray(rows));
    const steps = rows.filter((r) => r.name === 'guidance_step');
    t.deepEqual(
      steps.map((r) => r.method),
      METHODS.map((m) => m.label),
    );
    for (const r of rows) {
      t.is(r.width, 64);
      t.is(r.height, 64);
      t.is(r.dtype, 'f16');
      t.is(r.threads, 1);
      t.true(Number.isFinite(r.ms_per_step) && r.ms_per_step > 0, `${r.name} ${r.method} ms_per_step`);
      t.true(Number.isFinite(r.overhead_pct), `${r.name} ${r.method} overhead_pct`);
    }
    const cfg = steps.find((r) => r.method === 'cfg');
    t.is(cfg?.overhead_pct, 0);
    for (const r of steps) {
      t.is(r.steps, 2);
      t.true((r.fraction ?? 0) > 0 && (r.fraction ?? 0) < 1, `${r.method} fraction ${r.fraction}`);
      if (r.method !== 'characteristic') t.is(r.unet_passes_per_step, 1, `${r.method} passes`);
    }
    const chr = steps.find((r) => r.method === 'characteristic');
    t.true((chr?.iterations_per_step ?? 0) >= 1);
    t.is(chr?.iterations_per_step, chr?.unet_passes_per_step);
    t.true(Number.isInteger(chr?.converged_steps));
    const maps = rows.find((r) => r.name === 'scfg_maps');
    const capture = rows.find((r) => r.name === 'unet_capture_attention');
    t.is(maps?.unet_passes_per_step, 0);
    t.is(capture?.unet_passes_per_step, 1);
    t.true((capture?.unet_ms_per_step ?? 0) > 0);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('bench guidance --only keeps the CFG baseline; bad options are rejected', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'nd-bench-guidance-'));
  try {
    const { stdout } = await bench(
      '--json',
      '--cache',
      cache,
      '--width-scale',
      '0.125',
      '--size',
      '64x128',
      '--steps',
      '1',
      '--only',
      'cfg++',
    );
    const rows = JSON.parse(stdout) as GuidanceRow[];
    t.deepEqual(
      rows.map((r) => `${r.name}:${r.method}`),
      ['guidance_step:cfg', 'guidance_step:cfg++'],
    );
    t.true(rows.every((r) => r.width === 64 && r.height === 128));
    const bad = await t.throwsAsync(bench('--size', '65', '--cache', cache));
    t.regex((bad as Error & { stderr: string }).stderr, /Expected a size like 512 or 640x384/);
    const badMethod = await t.throwsAsync(bench('--only', 'pag', '--cache', cache));
    t.regex((badMethod as Error & { stderr: string }).stderr, /Expected methods among cfg, s-cfg/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
