// Detection errors: unknown layouts, diffusers component files, SDXL, layered folders, pickles,
// checkpoints that do not match the detected architecture.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { detectModel, identifyModel } from '../lib/loading/detect.js';
import { inspectModel } from '../lib/loading/inspect.js';
import { readSafetensorsHeader } from '../lib/loading/safetensors.js';
import { fixture } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'nd-detect-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

/** A safetensors file with these tensors (zero data). */
function writeZeros(
  path: string,
  tensors: Record<string, { dtype: string; shape: number[] }>,
  metadata?: Record<string, string>,
): string {
  const json: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F16' ? 2 : t.dtype === 'I64' ? 8 : 4);
    json[name] = { ...t, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const header = Buffer.from(JSON.stringify(json));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(path, Buffer.concat([len, header, Buffer.alloc(offset)]));
  return path;
}

function headerOf(path: string): Record<string, { dtype: string; shape: number[] }> {
  return Object.fromEntries(
    readSafetensorsHeader(path).tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape }]),
  );
}

test('an unknown layout is ERR_UNSUPPORTED listing the key prefixes found', (t) => {
  const path = writeZeros(join(tmp, 'other.safetensors'), {
    'model.layers.0.weight': { dtype: 'F32', shape: [2, 2] },
    'model.layers.1.weight': { dtype: 'F32', shape: [2, 2] },
    'lm_head.weight': { dtype: 'F32', shape: [2, 2] },
  });
  const err = t.throws(() => detectModel(path), { instanceOf: DiffusionError }) as DiffusionError;
  t.is(err.code, 'ERR_UNSUPPORTED');
  t.regex(err.message, /model\.layers\.\* \(2\)/);
  t.regex(err.message, /lm_head\.\* \(1\)/);
  t.regex(err.message, /cond_stage_model\.transformer/);
  const rng = t.throws(() => detectModel(fixture('rng/torch_randn.safetensors'))) as DiffusionError;
  t.is(rng.code, 'ERR_UNSUPPORTED');
});

test('a diffusers component file gets a hint to pass the folder', (t) => {
  const err = t.throws(() =>
    detectModel(fixture('models/tiny-sd1/unet/diffusion_pytorch_model.safetensors')),
  ) as DiffusionError;
  t.is(err.code, 'ERR_UNSUPPORTED');
  t.regex(err.message, /down_blocks\.\* \(\d+\)/);
  t.regex(err.message, /model_index\.json/);
});

test('SDXL keys are recognised and reported as not supported yet', (t) => {
  const path = writeZeros(join(tmp, 'sdxl.safetensors'), {
    'conditioner.embedders.0.transformer.text_model.final_layer_norm.weight': { dtype: 'F16', shape: [8] },
    'model.diffusion_model.input_blocks.0.0.weight': { dtype: 'F16', shape: [8, 4, 3, 3] },
    'first_stage_model.decoder.conv_in.weight': { dtype: 'F16', shape: [8, 4, 3, 3] },
  });
  t.is(identifyModel(path).family, 'sdxl');
  const err = t.throws(() => detectModel(path)) as DiffusionError;
  t.is(err.code, 'ERR_UNSUPPORTED');
  t.regex(err.message, /SDXL/);
  const report = inspectModel(path);
  t.is(report.family, 'sdxl');
  t.false(report.supported);
});

test('a layered model folder is identified; detectModel points to loadPipeline, inspect reports it runnable', (t) => {
  const dir = join(tmp, 'layered');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ format: 'native-diffusion-layered', scales: [16, 32, 64] }));
  const id = identifyModel(dir);
  t.is(id.family, 'layered');
  t.is(id.format, 'layered');
  t.deepEqual(id.layered?.scales, [16, 32, 64]);
  const err = t.throws(() => detectModel(dir)) as DiffusionError;
  t.is(err.code, 'ERR_UNSUPPORTED');
  t.regex(err.message, /load it with loadPipeline\(\)/);
  const report = inspectModel(dir);
  t.is(report.family, 'layered');
  t.true(report.supported);
  t.is(report.nativeSize, 64);
  const empty = join(tmp, 'empty');
  mkdirSync(empty);
  t.is((t.throws(() => detectModel(empty)) as DiffusionError).code, 'ERR_UNSUPPORTED');
});

test('pickle checkpoints are refused without being read', (t) => {
  const path = join(tmp, 'model.ckpt');
  writeFileSync(path, 'not read');
  const err = t.throws(() => detectModel(path)) as DiffusionError;
  t.is(err.code, 'ERR_UNSUPPORTED');
  t.regex(err.message, /pickle/);
});

test('missing files and directories are ERR_IO', (t) => {
  t.is((t.throws(() => detectModel(join(tmp, 'nope.safetensors'))) as DiffusionError).code, 'ERR_IO');
});

test('a checkpoint missing a tensor or with a wrong shape names the tensor', (t) => {
  const tensors = headerOf(fixture('models/tiny-sd1.safetensors'));
  delete tensors['model.diffusion_model.middle_block.2.out_layers.3.weight'];
  tensors['first_stage_model.decoder.conv_out.weight'] = { dtype: 'F32', shape: [3, 32, 1, 1] };
  const path = writeZeros(join(tmp, 'broken.safetensors'), tensors);
  const err = t.throws(() => detectModel(path)) as DiffusionError;
  t.is(err.code, 'ERR_INVALID_FILE');
  t.regex(err.message, /2 problems/);
  t.regex(err.message, /missing model\.diffusion_model\.middle_block\.2\.out_layers\.3\.weight \[64,64,3,3\]/);
  t.regex(
    err.message,
    /first_stage_model\.decoder\.conv_out\.weight: expected shape \[3,32,3,3\] but received \[3,32,1,1\]/,
  );
});

test('a structural tensor needed for detection that is missing is named', (t) => {
  const tensors = headerOf(fixture('models/tiny-sd2.safetensors'));
  delete tensors['model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight'];
  const err = t.throws(() => detectModel(writeZeros(join(tmp, 'nok.safetensors'), tensors))) as DiffusionError;
  t.is(err.code, 'ERR_INVALID_FILE');
  t.regex(err.message, /attn2\.to_k\.weight/);
});

test('bad overrides are validation errors', (t) => {
  const err = t.throws(() =>
    detectModel(fixture('models/tiny-sd2.safetensors'), { config: { unet: { numHeads: [3, 4, 8, 8] } } }),
  ) as DiffusionError;
  t.is(err.code, 'ERR_INVALID_ARGUMENT');
  t.regex(err.message, /Expected a head count dividing 32 for unet\.numHeads\[0\] but received 3/);
});

test('metadata and sibling yaml decide the prediction type of single files', (t) => {
  const tensors = headerOf(fixture('models/tiny-sd2.safetensors'));
  const meta = writeZeros(join(tmp, 'meta.safetensors'), tensors, {
    'modelspec.prediction_type': 'v',
    'modelspec.resolution': '768x768',
  });
  const m = detectModel(meta);
  t.is(m.config.family, 'sd2-v');
  t.is(m.config.nativeSize, 768);
  t.is(m.sources['scheduler.predictionType'], 'metadata');
  t.is(m.config.scheduler.className, 'DDIMScheduler');
  const named = writeZeros(join(tmp, 'v2-1_768-ema-pruned.safetensors'), tensors);
  t.is(detectModel(named).config.scheduler.predictionType, 'v_prediction');
  t.is(detectModel(named).sources['scheduler.predictionType'], 'filename');
  const withYaml = writeZeros(join(tmp, 'custom.safetensors'), tensors);
  writeFileSync(join(tmp, 'custom.yaml'), 'model:\n  params:\n    parameterization: "v"\n');
  t.is(detectModel(withYaml).config.scheduler.predictionType, 'v_prediction');
  t.is(detectModel(withYaml, { prediction: 'epsilon' }).config.family, 'sd2');
});
