// The U-Net configuration beyond SD 1/2 (native/models/unet.h): transformer depth per level and an optional
// added-conditioning embedding (SDXL's label_emb), so SDXL is a configuration of the same model, not a new file.
// No SDXL checkpoint is needed: the tiny SD1 U-Net checks the depth plumbing, and label_emb is mapped onto the
// tiny model's own time_embed tensors (same shapes when admInChannels = modelChannels) to exercise the path.
import test from 'ava';
import type { DiffusionError } from '../lib/errors.js';
import { detectModel } from '../lib/loading/detect.js';
import type { UNetConfig, WeightMap } from '../lib/loading/types.js';
import { NativeUNet, type UNetInputs } from '../lib/native/unet.js';
import { fixture, readSafetensors } from './helpers/fixtures.js';

const SD1 = { config: { nativeSize: 256, textEncoder: { heads: 4 } } } as never;
const detected = detectModel(fixture('models/tiny-sd1.safetensors'), SD1);
const weights = detected.weights as WeightMap;
const config = detected.config.unet as UNetConfig;
const { tensors } = readSafetensors(fixture('tiny-sd1/unet_32x32_t500.safetensors'));
const inputs: UNetInputs = {
  sample: tensors.sample.data as Float32Array,
  sampleShape: tensors.sample.shape as [number, number, number, number],
  timesteps: Array.from(tensors.timestep.data),
  context: tensors.encoder_hidden_states.data as Float32Array,
  contextShape: tensors.encoder_hidden_states.shape as [number, number, number],
};
const levels = config.channelMult.length;

test('transformerDepth per level equal to the scalar gives the bit-identical model, and round-trips', async (t) => {
  const scalar = NativeUNet.create(weights, config, { threads: 2 });
  const perLevel = NativeUNet.create(
    weights,
    { ...config, transformerDepth: new Array(levels).fill(config.transformerDepth) } as never,
    { threads: 2 },
  );
  t.deepEqual(await perLevel.forward(inputs), await scalar.forward(inputs));
  t.is(perLevel.nativeConfig().transformerDepth, config.transformerDepth);
  // a depth the checkpoint does not have fails at construction, naming the missing block
  const deeper = t.throws(() =>
    NativeUNet.create(weights, { ...config, transformerDepth: [1, 2, 1, 1].slice(0, levels) } as never),
  );
  t.is((deeper as DiffusionError).code, 'ERR_INVALID_FILE');
  t.regex(deeper?.message ?? '', /transformer_blocks\.1\./);
  scalar.dispose();
  perLevel.dispose();
});

test('admInChannels loads label_emb and adds label_emb(y) to the time embedding', async (t) => {
  const adm = config.modelChannels;
  const missing = t.throws(() => NativeUNet.create(weights, { ...config, admInChannels: adm } as never));
  t.is((missing as DiffusionError).code, 'ERR_INVALID_FILE');
  t.regex(missing?.message ?? '', /label_emb\.0\.0\.weight/);

  const p = 'model.diffusion_model.';
  const withLabel: WeightMap = { ...weights };
  for (const [from, to] of [
    ['time_embed.0', 'label_emb.0.0'],
    ['time_embed.2', 'label_emb.0.2'],
  ])
    for (const part of ['weight', 'bias']) withLabel[`${p}${to}.${part}`] = weights[`${p}${from}.${part}`];
  const sdxlish = NativeUNet.create(withLabel, { ...config, admInChannels: adm } as never, { threads: 2 });
  const stock = NativeUNet.create(weights, config, { threads: 2 });
  const B = inputs.sampleShape[0];
  const zeros = await sdxlish.forward(inputs, { added: new Float32Array(B * adm) });
  const ones = await sdxlish.forward(inputs, { added: new Float32Array(B * adm).fill(1) });
  const plain = await stock.forward(inputs);
  t.notDeepEqual(zeros, plain); // label_emb(0) = the MLP's biases, added to the embedding
  t.notDeepEqual(ones, zeros);
  t.deepEqual(await sdxlish.forward(inputs, { added: new Float32Array(B * adm).fill(1) }), ones);
  const bad = await t.throwsAsync(sdxlish.forward(inputs, { added: new Float32Array(3) }));
  t.is((bad as DiffusionError).code, 'ERR_INVALID_ARGUMENT');
  t.regex(bad?.message ?? '', /Expected \d+ values \(\[B, admInChannels\]\) for the added conditioning/);
  const none = await t.throwsAsync(sdxlish.forward(inputs));
  t.is((none as DiffusionError).code, 'ERR_INVALID_ARGUMENT');
  t.is((sdxlish.nativeConfig() as UNetConfig & { admInChannels?: number }).admInChannels, adm);
  sdxlish.dispose();
  stock.dispose();
});
