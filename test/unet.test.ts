// Parity of the native U-Net with diffusers (tiny-sd1 / tiny-sd2 fixtures), entropy scaling,
// attention capture, and input validation.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { DiffusionError } from '../lib/errors.js';
import type { UNetConfig, WeightMap } from '../lib/loading/types.js';
import { NativeUNet, type UNetInputs } from '../lib/native/unet.js';
import { fixture, maxAbsDiff, readSafetensors } from './helpers/fixtures.js';

const TOLERANCE = 1e-4;

/** Every model.diffusion_model.* tensor of a single-file checkpoint, canonical name = the file's key. */
function unetWeights(file: string): WeightMap {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const map: WeightMap = {};
  for (const key of Object.keys(header))
    if (key.startsWith('model.diffusion_model.')) map[key] = { file, tensor: key };
  return map;
}

/** UNetConfig from a diffusers unet/config.json (SD1: attention_head_dim is the head count everywhere). */
function configFromDiffusers(model: 'tiny-sd1' | 'tiny-sd2'): UNetConfig {
  const c = JSON.parse(readFileSync(fixture(`models/${model}/unet/config.json`), 'utf8'));
  const boc = c.block_out_channels as number[];
  const heads: number[] = Array.isArray(c.attention_head_dim) ? c.attention_head_dim : boc.map(() => c.attention_head_dim);
  return {
    inChannels: c.in_channels,
    outChannels: c.out_channels,
    modelChannels: boc[0],
    channelMult: boc.map((b) => b / boc[0]),
    numResBlocks: c.layers_per_block,
    attentionLevels: (c.down_block_types as string[]).map((t) => t.startsWith('CrossAttn')),
    numHeads: heads,
    midHeads: heads[heads.length - 1],
    transformerDepth: c.transformer_layers_per_block,
    contextDim: c.cross_attention_dim,
    useLinearProjection: c.use_linear_projection,
    upcastAttention: c.upcast_attention,
    normGroups: c.norm_num_groups,
  };
}

const models = new Map<string, NativeUNet>();
function unet(model: 'tiny-sd1' | 'tiny-sd2', file = `models/${model}.safetensors`): NativeUNet {
  const key = `${model}:${file}`;
  let u = models.get(key);
  if (!u) {
    u = NativeUNet.create(unetWeights(fixture(file)), configFromDiffusers(model), { threads: 2 });
    models.set(key, u);
  }
  return u;
}
test.after.always(() => {
  for (const u of models.values()) u.dispose();
});

function caseInputs(rel: string): { inputs: UNetInputs; out: Float32Array } {
  const { tensors } = readSafetensors(fixture(rel));
  const s = tensors.sample, c = tensors.encoder_hidden_states;
  return {
    inputs: {
      sample: s.data as Float32Array,
      sampleShape: s.shape as [number, number, number, number],
      timesteps: Array.from(tensors.timestep.data),
      context: c.data as Float32Array,
      contextShape: c.shape as [number, number, number],
    },
    out: tensors.out.data as Float32Array,
  };
}

const cases: Array<[model: 'tiny-sd1' | 'tiny-sd2', name: string]> = [];
for (const model of ['tiny-sd1', 'tiny-sd2'] as const)
  for (const name of ['unet_32x32_t500', 'unet_32x32_t1', 'unet_32x32_t333.5', 'unet_24x40_t500', 'unet_b2_32x32_t500'])
    cases.push([model, name]);

for (const [model, name] of cases) {
  test(`${model}/${name} matches diffusers within ${TOLERANCE}`, async (t) => {
    const { inputs, out } = caseInputs(`${model}/${name}.safetensors`);
    const got = await unet(model).forward(inputs);
    const err = maxAbsDiff(got, out);
    t.log(`max abs error ${err.toExponential(2)}`);
    t.true(err <= TOLERANCE, `max abs error ${err}`);
  });
}

test('tiny-sd1 with float16 weights matches the fp16-weights fixture', async (t) => {
  const { inputs, out } = caseInputs('tiny-sd1/unet_32x32_t500_fp16weights.safetensors');
  const got = await unet('tiny-sd1', 'models/tiny-sd1-fp16.safetensors').forward(inputs);
  const err = maxAbsDiff(got, out);
  t.log(`max abs error ${err.toExponential(2)}`);
  t.true(err <= TOLERANCE, `max abs error ${err}`);
  // and it differs from the float32-weights result by more than the tolerance would hide
  const f32 = caseInputs('tiny-sd1/unet_32x32_t500.safetensors').out;
  t.true(maxAbsDiff(got, f32) > 0);
});
