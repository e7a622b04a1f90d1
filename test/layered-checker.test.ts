// The TS port of the shapes checker (lib/bench/shapes-checker.ts) reads the same objects as training/data.py on
// renders made by the Python generator (test/fixtures/layered/checker.json, from training/export_eval.py), and the
// quality bench runs end to end on the default model (1 scene, 2 steps: a smoke test, not a measurement).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runQualityBench } from '../lib/bench/quality.js';
import { check, detect, hullArea, type Scene, toCheckerSize } from '../lib/bench/shapes-checker.js';
import { fixture, repoRoot } from './helpers/fixtures.js';

interface Case {
  size: number;
  rgb: string;
  scene: Scene;
  found: Array<[string, string, string]>;
  all_ok: boolean;
}
const cases = JSON.parse(readFileSync(fixture('layered/checker.json'), 'utf8')) as Case[];

test('hull area of a unit square and a triangle', (t) => {
  t.is(
    hullArea([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [0.5, 0.5],
    ]),
    1,
  );
  t.is(
    hullArea([
      [0, 0],
      [4, 0],
      [0, 3],
    ]),
    6,
  );
});

test('TS checker reads what the Python checker reads', (t) => {
  let passes = 0;
  for (const [i, c] of cases.entries()) {
    const rgb = new Uint8Array(Buffer.from(c.rgb, 'base64'));
    const key = (f: { colour: string; shape: string; size: string }) => `${f.colour} ${f.shape} ${f.size}`;
    t.deepEqual(
      detect(rgb, c.size).map(key).sort(),
      c.found.map(([colour, shape, size]) => key({ colour, shape, size })).sort(),
      `case ${i}`,
    );
    const r = check(rgb, c.size, c.scene);
    t.is(r.allOk, c.all_ok, `case ${i}`);
    passes += +r.allOk;
  }
  t.true(passes > 10 && passes < cases.length, 'the fixture holds passing and failing pairs');
});

test('blank image: nothing found; resampling keeps a flat colour', (t) => {
  const blank = new Uint8Array(64 * 64 * 3).fill(245);
  t.is(detect(blank, 64).length, 0);
  const big = new Uint8Array(128 * 128 * 3).fill(20);
  t.true(toCheckerSize(big, 128).every((v) => v === 20));
});

test('quality bench runs end to end (smoke: 1 scene, 2 steps)', async (t) => {
  const rows = await runQualityBench({
    modelDir: join(repoRoot, 'models', 'default'),
    scenes: 1,
    steps: 2,
    threads: 2,
    settings: ['native'],
  });
  t.is(rows.length, 1);
  t.is(rows[0].size, 64);
  t.true(rows[0].alignment >= 0 && rows[0].alignment <= 1);
});
