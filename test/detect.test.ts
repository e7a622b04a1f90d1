// Checkpoint detection against the tiny fixtures: configs equal the diffusers config.json files,
// the diffusers -> canonical key mapping lands on the same bytes as the single files.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { toHalf } from '../lib/cli/make-checkpoint.js';
import { type DetectedModel, detectModel } from '../lib/loading/detect.js';
import { diffusersUNetKey, diffusersVaeKey, hfTextEncoderKey, openClipFusedSource } from '../lib/loading/keys.js';
import { readSafetensorsHeader } from '../lib/loading/safetensors.js';
import type { ModelConfig, WeightLocation } from '../lib/loading/types.js';
import { fixture } from './helpers/fixtures.js';

const folder = (name: string) => fixture(`models/${name}`);
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

// What the tiny single files cannot carry (see the fixtures README): SD1's text heads,
// SD2's U-Net heads (2, 4, 8, 8), text heads and v-prediction, and the 256 px native size.
const SD1_OVERRIDES = { config: { nativeSize: 256, textEncoder: { heads: 4 } } };
const SD2_OVERRIDES = {
  prediction: 'v_prediction' as const,
  config: { nativeSize: 256, unet: { numHeads: [2, 4, 8, 8], midHeads: 8 }, textEncoder: { heads: 2 } },
};

function checkAgainstDiffusersConfig(t: any, c: ModelConfig, dir: string): void {
  const unet = json(join(dir, 'unet', 'config.json'));
  const vae = json(join(dir, 'vae', 'config.json'));
  const te = json(join(dir, 'text_encoder', 'config.json'));
  const sched = json(join(dir, 'scheduler', 'scheduler_config.json'));
  const levels = unet.block_out_channels.length;
  t.deepEqual(
    c.unet.channelMult.map((m) => m * c.unet.modelChannels),
    unet.block_out_channels,
  );
  t.is(c.unet.numResBlocks, unet.layers_per_block);
  t.deepEqual(
    c.unet.attentionLevels,
    unet.down_block_types.map((b: string) => b.startsWith('CrossAttn')),
  );
  const heads = Array.isArray(unet.attention_head_dim)
    ? unet.attention_head_dim
    : Array(levels).fill(unet.attention_head_dim);
  t.deepEqual(c.unet.numHeads, heads);
  t.is(c.unet.midHeads, heads[levels - 1]);
  t.is(c.unet.contextDim, unet.cross_attention_dim);
  t.is(c.unet.useLinearProjection, unet.use_linear_projection);
  t.is(c.unet.upcastAttention, unet.upcast_attention);
  t.is(c.unet.transformerDepth, unet.transformer_layers_per_block);
  t.is(c.unet.inChannels, unet.in_channels);
  t.is(c.unet.outChannels, unet.out_channels);
  t.is(c.unet.normGroups, unet.norm_num_groups);
  t.deepEqual(c.vae.channels, vae.block_out_channels);
  t.is(c.vae.numResBlocks, vae.layers_per_block);
  t.is(c.vae.latentChannels, vae.latent_channels);
  t.is(c.vae.scalingFactor, vae.scaling_factor);
  t.is(c.textEncoder.hidden, te.hidden_size);
  t.is(c.textEncoder.intermediate, te.intermediate_size);
  t.is(c.textEncoder.heads, te.num_attention_heads);
  t.is(c.textEncoder.vocabSize, te.vocab_size);
  t.is(c.textEncoder.maxPositions, te.max_position_embeddings);
  t.is(c.textEncoder.activation, te.hidden_act);
  t.is(c.textEncoder.defaultLayersToRun, te.num_hidden_layers);
  t.is(c.nativeSize, unet.sample_size * 8);
  t.is(c.scheduler.predictionType, sched.prediction_type);
  t.is(c.scheduler.className, sched._class_name);
  t.is(c.scheduler.betaStart, sched.beta_start);
  t.is(c.scheduler.betaEnd, sched.beta_end);
  t.is(c.scheduler.betaSchedule, sched.beta_schedule);
  t.is(c.scheduler.stepsOffset, sched.steps_offset);
  t.is(c.scheduler.timestepSpacing, sched.timestep_spacing);
  t.is(c.scheduler.setAlphaToOne, sched.set_alpha_to_one);
}

test('tiny-sd1 diffusers folder: config equals its config.json files', (t) => {
  const m = detectModel(folder('tiny-sd1'));
  t.is(m.format, 'diffusers');
  t.is(m.config.family, 'sd1');
  t.is(m.config.textEncoder.kind, 'clip');
  t.is(m.config.textEncoder.padToken, 49407);
  t.is(m.config.dtype, 'F32');
  checkAgainstDiffusersConfig(t, m.config, folder('tiny-sd1'));
  t.is(m.sources['unet.numHeads'], 'config');
});

test('tiny-sd2 diffusers folder: config equals its config.json files', (t) => {
  const m = detectModel(folder('tiny-sd2'));
  t.is(m.config.family, 'sd2-v');
  t.is(m.config.textEncoder.kind, 'openclip');
  t.is(m.config.textEncoder.padToken, 0);
  t.is(m.config.textEncoder.layers, 4);
  checkAgainstDiffusersConfig(t, m.config, folder('tiny-sd2'));
});

test('single files: structure from shapes, family rules for the rest, overrides complete them', (t) => {
  const sd1 = detectModel(fixture('models/tiny-sd1.safetensors'));
  t.is(sd1.format, 'single-file');
  t.is(sd1.config.family, 'sd1');
  t.deepEqual(sd1.config.unet.numHeads, [8, 8, 8, 8]); // the SD1 rule is right for tiny-sd1
  t.is(sd1.config.nativeSize, 512);
  t.is(sd1.sources.nativeSize, 'default');
  t.is(sd1.config.scheduler.className, 'PNDMScheduler');
  const sd2 = detectModel(fixture('models/tiny-sd2.safetensors'));
  t.is(sd2.config.family, 'sd2'); // no metadata, no 768 in the name: epsilon by rule
  t.deepEqual(sd2.config.unet.numHeads, [1, 1, 1, 1]); // width 32 / 64 rounded up: wrong for tiny-sd2, hence the override
  t.is(sd2.config.textEncoder.layers, 5);
  t.is(sd2.config.textEncoder.defaultLayersToRun, 4);

  // With the overrides both single files give exactly the folder's config (SD2: plus the extra block).
  const withOverrides: Array<[string, string, object]> = [
    ['tiny-sd1.safetensors', 'tiny-sd1', SD1_OVERRIDES],
    ['tiny-sd1-fp16.safetensors', 'tiny-sd1', SD1_OVERRIDES],
    ['tiny-sd2.safetensors', 'tiny-sd2', SD2_OVERRIDES],
  ];
  for (const [file, dir, overrides] of withOverrides) {
    const single = detectModel(fixture(`models/${file}`), overrides);
    const ref = detectModel(folder(dir)).config;
    const got = {
      ...single.config,
      textEncoder: { ...single.config.textEncoder, layers: ref.textEncoder.layers },
      dtype: ref.dtype,
    };
    t.deepEqual(got, ref, file);
    checkAgainstDiffusersConfig(t, single.config, folder(dir));
    t.is(single.sources['unet.numHeads'], dir === 'tiny-sd2' ? 'override' : 'default');
  }
  t.is(detectModel(fixture('models/tiny-sd1-fp16.safetensors')).config.dtype, 'F16');
});

test('parameter counts per component match the fixture build summary', (t) => {
  const summary = json(fixture('models/build_summary.json'));
  for (const name of ['tiny-sd1', 'tiny-sd2']) {
    const p = summary[name].params;
    for (const path of [folder(name), fixture(`models/${name}.safetensors`)]) {
      const m = detectModel(path);
      t.is(m.components.unet.parameters, p.unet, path);
      t.is(m.components.vae.parameters, p.vae, path);
      // SD2 single files hold one text block more than the diffusers text encoder
      if (m.format === 'diffusers' || name === 'tiny-sd1')
        t.is(m.components.textEncoder.parameters, p.text_encoder, path);
    }
  }
  const fp16 = detectModel(fixture('models/tiny-sd1-fp16.safetensors'));
  t.deepEqual(fp16.components.unet.dtypes, { F16: summary['tiny-sd1'].params.unet });
});

test('unused tensors are exactly the non-model ones', (t) => {
  const ddpm = [
    'alphas_cumprod',
    'alphas_cumprod_prev',
    'betas',
    'log_one_minus_alphas_cumprod',
    'posterior_log_variance_clipped',
    'posterior_mean_coef1',
    'posterior_mean_coef2',
    'posterior_variance',
    'sqrt_alphas_cumprod',
    'sqrt_one_minus_alphas_cumprod',
    'sqrt_recip_alphas_cumprod',
    'sqrt_recipm1_alphas_cumprod',
  ];
  t.deepEqual(
    detectModel(fixture('models/tiny-sd1.safetensors')).unusedTensors.sort(),
    [...ddpm, 'cond_stage_model.transformer.text_model.embeddings.position_ids'].sort(),
  );
  t.deepEqual(
    detectModel(fixture('models/tiny-sd2.safetensors')).unusedTensors.sort(),
    [...ddpm, 'cond_stage_model.model.logit_scale', 'cond_stage_model.model.text_projection'].sort(),
  );
  t.deepEqual(detectModel(folder('tiny-sd1')).unusedTensors, []);
  t.deepEqual(detectModel(folder('tiny-sd2')).unusedTensors, []);
});

// ------------------------------------------------------------------ key mapping = same bytes

const fileCache = new Map<
  string,
  { buf: Buffer; base: number; info: Map<string, { dtype: string; shape: number[]; offsets: [number, number] }> }
>();
function tensorBytes(loc: WeightLocation): { bytes: Buffer; dtype: string; count: number } {
  let f = fileCache.get(loc.file);
  if (!f) {
    const h = readSafetensorsHeader(loc.file);
    f = {
      buf: readFileSync(loc.file),
      base: 8 + h.headerBytes,
      info: new Map(h.tensors.map((x) => [x.name, { dtype: x.dtype, shape: x.shape, offsets: x.dataOffsets }])),
    };
    fileCache.set(loc.file, f);
  }
  const info = f.info.get(loc.tensor);
  if (!info) throw new Error(`no ${loc.tensor} in ${loc.file}`);
  let [b, e] = info.offsets.map((o) => o + (f as { base: number }).base);
  if (loc.rows) {
    const rowBytes = (e - b) / info.shape[0];
    [b, e] = [b + loc.rows[0] * rowBytes, b + loc.rows[1] * rowBytes];
  }
  const size = info.dtype === 'F16' ? 2 : info.dtype === 'I64' ? 8 : 4;
  return { bytes: f.buf.subarray(b, e), dtype: info.dtype, count: (e - b) / size };
}

function compareMappings(t: any, dir: DetectedModel, single: DetectedModel, half: boolean): void {
  let compared = 0;
  for (const [name, loc] of Object.entries(dir.weights)) {
    const other = single.weights[name];
    if (!other) {
      t.fail(`${name} (from ${loc.tensor}) is not in the single file`);
      continue;
    }
    const a = tensorBytes(loc);
    const b = tensorBytes(other);
    if (a.count !== b.count) t.fail(`${name}: ${a.count} vs ${b.count} elements`);
    else if (!half && !a.bytes.equals(b.bytes))
      t.fail(`${name}: data differs (${loc.tensor} vs ${other.tensor}${other.rows ? ` rows ${other.rows}` : ''})`);
    else if (half) {
      for (let i = 0; i < a.count; i++) {
        if (toHalf(a.bytes.readFloatLE(4 * i)) !== b.bytes.readUInt16LE(2 * i)) {
          t.fail(`${name}[${i}]: f16 differs`);
          break;
        }
      }
    }
    compared++;
  }
  t.is(compared, Object.keys(dir.weights).length);
}

test('tiny-sd1: every canonical name of the folder holds the single file tensor, byte for byte', (t) => {
  const dir = detectModel(folder('tiny-sd1'));
  const single = detectModel(fixture('models/tiny-sd1.safetensors'));
  t.deepEqual(Object.keys(dir.weights).sort(), Object.keys(single.weights).sort());
  compareMappings(t, dir, single, false);
});

test('tiny-sd1 fp16 file: every mapped tensor is the f32 weight rounded to f16', (t) => {
  compareMappings(t, detectModel(folder('tiny-sd1')), detectModel(fixture('models/tiny-sd1-fp16.safetensors')), true);
});

test('tiny-sd2: split q/k/v canonical names are row slices of the fused OpenCLIP in_proj', (t) => {
  const dir = detectModel(folder('tiny-sd2'));
  const single = detectModel(fixture('models/tiny-sd2.safetensors'));
  const extra = Object.keys(single.weights).filter((n) => !(n in dir.weights));
  t.true(extra.length > 0);
  t.true(
    extra.every((n) => n.startsWith('cond_stage_model.model.transformer.resblocks.4.')),
    extra.join(', '),
  );
  const k = single.weights['cond_stage_model.model.transformer.resblocks.2.attn.k_proj.weight'];
  t.deepEqual(k, {
    file: single.path,
    tensor: 'cond_stage_model.model.transformer.resblocks.2.attn.in_proj_weight',
    rows: [32, 64],
  });
  t.deepEqual(
    dir.weights['cond_stage_model.model.transformer.resblocks.2.attn.k_proj.weight'].tensor,
    'text_model.encoder.layers.2.self_attn.k_proj.weight',
  );
  t.false(Object.keys(single.weights).some((n) => n.includes('in_proj')));
  compareMappings(t, dir, single, false);
});

test('VAE attention: diffusers Linear [C, C] maps onto the LDM 1x1 conv [C, C, 1, 1]', (t) => {
  const dir = detectModel(folder('tiny-sd1'));
  t.is(
    dir.weights['first_stage_model.decoder.mid.attn_1.proj_out.weight'].tensor,
    'decoder.mid_block.attentions.0.to_out.0.weight',
  );
  t.is(
    dir.weights['first_stage_model.encoder.mid.attn_1.q.weight'].tensor,
    'encoder.mid_block.attentions.0.to_q.weight',
  );
  t.is(
    dir.weights['model.diffusion_model.output_blocks.2.1.conv.weight'].tensor,
    'up_blocks.0.upsamplers.0.conv.weight',
  );
  t.is(
    dir.weights['model.diffusion_model.output_blocks.5.2.conv.weight'].tensor,
    'up_blocks.1.upsamplers.0.conv.weight',
  );
  t.is(
    dir.weights['model.diffusion_model.input_blocks.9.0.op.weight'].tensor,
    'down_blocks.2.downsamplers.0.conv.weight',
  );
  t.is(
    dir.weights['first_stage_model.decoder.up.3.upsample.conv.weight'].tensor,
    'decoder.up_blocks.0.upsamplers.0.conv.weight',
  );
});

test('a folder may be given by its model_index.json', (t) => {
  const m = detectModel(join(folder('tiny-sd1'), 'model_index.json'));
  t.is(m.format, 'diffusers');
  t.is(m.path, folder('tiny-sd1'));
});

test('key mapping at the full SD 1.5 layout (4 levels, 2 layers; attention-free up level 0)', (t) => {
  const layout = { numResBlocks: 2, upHasAttention: [false, true, true, true] };
  const cases: Array<[string, string | null]> = [
    ['time_embedding.linear_2.bias', 'time_embed.2.bias'],
    ['conv_in.weight', 'input_blocks.0.0.weight'],
    [
      'down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight',
      'input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight',
    ],
    ['down_blocks.3.resnets.1.time_emb_proj.weight', 'input_blocks.11.0.emb_layers.1.weight'],
    ['down_blocks.1.resnets.0.conv_shortcut.weight', 'input_blocks.4.0.skip_connection.weight'],
    ['down_blocks.2.downsamplers.0.conv.bias', 'input_blocks.9.0.op.bias'],
    ['mid_block.resnets.1.norm2.weight', 'middle_block.2.out_layers.0.weight'],
    ['mid_block.attentions.0.proj_in.weight', 'middle_block.1.proj_in.weight'],
    ['up_blocks.0.resnets.2.conv1.weight', 'output_blocks.2.0.in_layers.2.weight'],
    ['up_blocks.0.upsamplers.0.conv.weight', 'output_blocks.2.1.conv.weight'],
    ['up_blocks.2.upsamplers.0.conv.weight', 'output_blocks.8.2.conv.weight'],
    [
      'up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2.weight',
      'output_blocks.11.1.transformer_blocks.0.ff.net.2.weight',
    ],
    ['conv_norm_out.bias', 'out.0.bias'],
    ['down_blocks.0.resnets.2.conv1.weight', null], // beyond layers_per_block
    ['add_embedding.linear_1.weight', null],
  ];
  for (const [key, want] of cases) t.is(diffusersUNetKey(key, layout), want && `model.diffusion_model.${want}`, key);
  t.is(
    diffusersVaeKey('decoder.up_blocks.0.resnets.2.conv_shortcut.weight', 4),
    'first_stage_model.decoder.up.3.block.2.nin_shortcut.weight',
  );
  t.is(
    diffusersVaeKey('encoder.mid_block.attentions.0.query.weight', 4),
    'first_stage_model.encoder.mid.attn_1.q.weight',
  ); // pre-0.15 names
  t.is(
    diffusersVaeKey('decoder.mid_block.attentions.0.proj_attn.bias', 4),
    'first_stage_model.decoder.mid.attn_1.proj_out.bias',
  );
  t.is(diffusersVaeKey('encoder.conv_norm_out.weight', 4), 'first_stage_model.encoder.norm_out.weight');
  t.is(
    hfTextEncoderKey('text_model.encoder.layers.22.mlp.fc2.bias', 'openclip'),
    'cond_stage_model.model.transformer.resblocks.22.mlp.c_proj.bias',
  );
  t.is(
    hfTextEncoderKey('text_model.embeddings.position_embedding.weight', 'openclip'),
    'cond_stage_model.model.positional_embedding',
  );
  t.is(
    hfTextEncoderKey('text_model.encoder.layers.3.self_attn.v_proj.weight', 'clip'),
    'cond_stage_model.transformer.text_model.encoder.layers.3.self_attn.v_proj.weight',
  );
  t.is(hfTextEncoderKey('text_model.embeddings.position_ids', 'clip'), null);
  t.deepEqual(openClipFusedSource('cond_stage_model.model.transformer.resblocks.0.attn.v_proj.bias', 1024), {
    tensor: 'cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias',
    rows: [2048, 3072],
  });
  t.is(openClipFusedSource('cond_stage_model.model.transformer.resblocks.0.attn.out_proj.weight', 1024), null);
});
