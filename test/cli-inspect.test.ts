// `native-diffusion inspect` end to end (the CLI run from source with tsx, as a child process).

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { fixture, repoRoot } from './helpers/fixtures.js';

const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { cwd: repoRoot });

test('inspect a diffusers folder, text and --json', async (t) => {
  const text = await cli('inspect', fixture('models/tiny-sd2'));
  t.regex(text.stdout, /family\s+Stable Diffusion 2\.x \(v-prediction\) \[sd2-v\]/);
  t.regex(text.stdout, /format\s+diffusers/);
  t.regex(text.stdout, /native size\s+256x256/);
  t.regex(text.stdout, /heads 2\/4\/8\/8 \(mid 8\)/);
  const json = JSON.parse((await cli('inspect', fixture('models/tiny-sd2'), '--json')).stdout);
  t.is(json.family, 'sd2-v');
  t.is(json.format, 'diffusers');
  t.is(json.predictionType, 'v_prediction');
  t.is(json.components.unet.parameters, 1086692);
  t.deepEqual(json.config.unet.numHeads, [2, 4, 8, 8]);
});

test('inspect a single file, text and --json with overrides', async (t) => {
  const text = await cli('inspect', fixture('models/tiny-sd1-fp16.safetensors'));
  t.regex(text.stdout, /family\s+Stable Diffusion 1\.x \[sd1\]/);
  t.regex(text.stdout, /format\s+single-file/);
  t.regex(text.stdout, /dtype\s+F16/);
  t.regex(text.stdout, /native size\s+512x512 \(family default\)/);
  const json = JSON.parse(
    (
      await cli(
        'inspect',
        fixture('models/tiny-sd2.safetensors'),
        '--json',
        '--prediction',
        'v_prediction',
        '--config',
        '{"unet":{"numHeads":[2,4,8,8],"midHeads":8}}',
      )
    ).stdout,
  );
  t.is(json.family, 'sd2-v');
  t.is(json.format, 'single-file');
  t.deepEqual(json.config.unet.numHeads, [2, 4, 8, 8]);
  t.is(json.sources['unet.numHeads'], 'override');
  t.is(json.unusedTensors.length, 14);
});

test('inspect of an unknown layout exits 1 with the prefixes found', async (t) => {
  const err = (await t.throwsAsync(cli('inspect', fixture('rng/torch_randn.safetensors')))) as {
    code: number;
    stderr: string;
  };
  t.is(err.code, 1);
  t.regex(err.stderr, /^error: Unrecognised checkpoint layout/);
  t.regex(err.stderr, /ERR_UNSUPPORTED/);
});

test('make-checkpoint writes a file inspect recognises; bad options are validation errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nd-cli-'));
  try {
    const out = join(dir, 'small.safetensors');
    const made = await cli(
      'make-checkpoint',
      '--family',
      'sd15',
      '--dtype',
      'f16',
      '--width-scale',
      '0.05',
      '--seed',
      '1',
      '-o',
      out,
    );
    t.regex(made.stdout, /wrote .*small\.safetensors: \d+ tensors/);
    t.true(statSync(out).size > 0);
    const json = JSON.parse((await cli('inspect', out, '--json')).stdout);
    t.is(json.family, 'sd1');
    t.is(json.dtype, 'F16');
    const bad = (await t.throwsAsync(cli('make-checkpoint', '--family', 'sdxl', '-o', join(dir, 'x.safetensors')))) as {
      code: number;
      stderr: string;
    };
    t.is(bad.code, 1);
    t.regex(bad.stderr, /Expected "sd15" or "sd21" for family but received "sdxl"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
