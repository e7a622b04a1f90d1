// make-checkpoint writes exactly what detection expects: full-size SD1.5 / SD2.1 headers (data as
// a sparse zero file) detect as the standard configs with the known parameter counts; narrowed
// files are written for real, deterministic from the seed, with the intended value scales.

import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { planCheckpoint, standardConfig, toHalf, writeCheckpoint } from '../lib/cli/make-checkpoint.js';
import { detectModel } from '../lib/loading/detect.js';
import { readSafetensors } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'nd-mkckpt-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

/** Header + a sparse zero body: a valid file of the full size that costs no disk. */
function writeSparse(path: string, opts: Parameters<typeof planCheckpoint>[0]) {
  const plan = planCheckpoint(opts);
  const fd = openSync(path, 'w');
  writeSync(fd, plan.header);
  ftruncateSync(fd, plan.bytes);
  closeSync(fd);
  return plan;
}

test('full-size SD 1.5 detects as the standard config with the known parameter counts', (t) => {
  const path = join(tmp, 'sd15.safetensors');
  writeSparse(path, { family: 'sd15', dtype: 'f16' });
  const m = detectModel(path);
  t.deepEqual(m.config, standardConfig('sd15'));
  t.is(m.components.unet.parameters, 859_520_964);
  t.is(m.components.vae.parameters, 83_653_863);
  t.is(m.components.textEncoder.parameters, 123_060_480);
  t.deepEqual(m.components.unet.dtypes, { F16: 859_520_964 });
  t.is(m.sources['unet.numHeads'], 'default'); // full-size files carry no head metadata: the SD1 rule gives 8
});

test('full-size SD 2.1 detects as 768-v with heads from the 64-channel rule', (t) => {
  const path = join(tmp, 'sd21.safetensors');
  writeSparse(path, { family: 'sd21', dtype: 'f32' });
  const m = detectModel(path);
  t.deepEqual(m.config, { ...standardConfig('sd21'), dtype: 'F32' });
  t.deepEqual(m.config.unet.numHeads, [5, 10, 20, 20]);
  t.is(m.config.unet.midHeads, 20);
  t.is(m.config.textEncoder.heads, 16);
  t.is(m.config.textEncoder.layers, 24);
  t.is(m.config.textEncoder.defaultLayersToRun, 23);
  t.is(m.config.family, 'sd2-v');
  t.is(m.config.nativeSize, 768);
  t.is(m.components.unet.parameters, 865_910_724);
  t.is(m.components.vae.parameters, 83_653_863);
  // 24 OpenCLIP blocks; the 23 SD 2 runs are HF's 340,387,840 (+ one block of 12,596,224)
  t.is(m.components.textEncoder.parameters, 340_387_840 + 12_596_224);
});

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

test('narrowed checkpoints: written for real, detected with their metadata heads, deterministic', (t) => {
  const a = join(tmp, 'a.safetensors');
  const b = join(tmp, 'b.safetensors');
  const c = join(tmp, 'c.safetensors');
  const opts = { family: 'sd21' as const, dtype: 'f16' as const, widthScale: 0.1, seed: 7 };
  const plan = writeCheckpoint(a, opts);
  writeCheckpoint(b, opts);
  writeCheckpoint(c, { ...opts, seed: 8 });
  t.is(readFileSync(a).length, plan.bytes);
  t.is(sha(a), sha(b));
  t.not(sha(a), sha(c));
  const m = detectModel(a);
  t.deepEqual(m.config, standardConfig('sd21', 0.1));
  t.is(m.sources['unet.numHeads'], 'metadata');
  t.is(m.config.unet.modelChannels, 32);
});

test('values: ones for norms, zeros for biases, weights with variance 1/fan_in, exact f16 rounding', (t) => {
  const path = join(tmp, 'small-f32.safetensors');
  writeCheckpoint(path, { family: 'sd15', dtype: 'f32', widthScale: 0.1, seed: 3 });
  const f = readSafetensors(path).tensors;
  const p = 'model.diffusion_model.';
  t.true((f[`${p}out.0.weight`].data as Float32Array).every((v) => v === 1));
  t.true((f[`${p}out.0.bias`].data as Float32Array).every((v) => v === 0));
  const w = f[`${p}input_blocks.1.0.in_layers.2.weight`];
  const data = w.data as Float32Array;
  const fanIn = w.shape[1] * 9;
  const mean = data.reduce((s, v) => s + v, 0) / data.length;
  const std = Math.sqrt(data.reduce((s, v) => s + (v - mean) ** 2, 0) / data.length);
  t.true(Math.abs(std * Math.sqrt(fanIn) - 1) < 0.05, `std ${std} vs ${1 / Math.sqrt(fanIn)}`);
  t.true(Math.abs(mean) < 0.05 / Math.sqrt(fanIn));
  t.deepEqual(
    f['cond_stage_model.transformer.text_model.embeddings.position_ids'].data,
    Array.from({ length: 77 }, (_, i) => i),
  );
  const ac = f.alphas_cumprod.data as Float32Array;
  t.true(Math.abs(ac[0] - (1 - 0.00085)) < 1e-7 && Math.abs(ac[999] - 0.0046) < 1e-4);

  const half = join(tmp, 'small-f16.safetensors');
  writeCheckpoint(half, { family: 'sd15', dtype: 'f16', widthScale: 0.1, seed: 3 });
  const h = readSafetensors(half).tensors[`${p}input_blocks.1.0.in_layers.2.weight`].data as Float32Array;
  const f16bits = (x: number) => toHalf(x);
  // the f16 file holds the same draws rounded to f16 (readSafetensors widens f16 exactly)
  for (let i = 0; i < data.length; i += 97) t.is(f16bits(h[i]), f16bits(data[i]));
});

test('toHalf rounds to nearest even and handles specials', (t) => {
  t.is(toHalf(1), 0x3c00);
  t.is(toHalf(-2), 0xc000);
  t.is(toHalf(65504), 0x7bff);
  t.is(toHalf(65520), 0x7c00); // rounds up to infinity
  t.is(toHalf(Number.POSITIVE_INFINITY), 0x7c00);
  t.is(toHalf(Number.NaN) & 0x7e00, 0x7e00);
  t.is(toHalf(2 ** -24), 0x0001); // smallest subnormal
  t.is(toHalf(2 ** -25), 0x0000); // ties to even (zero)
  t.is(toHalf(3 * 2 ** -25), 0x0002); // tie 1.5 -> 2
  t.is(toHalf(1 + 2 ** -11), 0x3c00); // tie to even
  t.is(toHalf(1 + 3 * 2 ** -11), 0x3c02);
  t.is(toHalf(-0), 0x8000);
});
