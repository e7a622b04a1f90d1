// Parity of the native VAE with diffusers' AutoencoderKL (tiny-sd1, tiny-sd2, and the f16 tiny-sd1
// file), the tiled decoder, the encoder's moments and latent sampling, and typed errors.
// Tolerances: f32 1e-4 max abs (fixture 1-vs-2-threads: decode 6.4e-6 sd1 / 0 sd2, encode mean
// 1.3e-6 sd1 / 0 sd2; we measure about 7e-6). f16 weights are the f32 ones rounded to f16 and are
// compared with the f32 fixtures: measured 8.1e-3 (decode, max |x| 5.2) and 2.8e-3 (encode).
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { sampleLatents, Vae } from '../lib/native/vae.js';
import { fixture, maxAbsDiff, readSafetensors } from './helpers/fixtures.js';
import { singleFileWeights, tinyFiles, tinySd1VaeConfig, tinySd2VaeConfig } from './helpers/tiny-models.js';

const F32_TOL = 1e-4;
const F16_DECODE_TOL = 2e-2;
const F16_ENCODE_TOL = 1e-2;

const sd1 = new Vae(singleFileWeights(tinyFiles.sd1, 'first_stage_model.'), tinySd1VaeConfig, { threads: 2 });
const sd2 = new Vae(singleFileWeights(tinyFiles.sd2, 'first_stage_model.'), tinySd2VaeConfig, { threads: 2 });
const sd1fp16 = new Vae(singleFileWeights(tinyFiles.sd1fp16, 'first_stage_model.'), tinySd1VaeConfig, { threads: 2 });

const f32 = (t: { data: Float32Array | number[] }) => t.data as Float32Array;
const cases = (model: string, name: string) => readSafetensors(fixture(`${model}/${name}.safetensors`)).tensors;
const decodeCase = cases('tiny-sd1', 'vae_decode_32x32');

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

/** z[:, :, y0:y0+h, x0:x0+w] of a [B, C, H, W] tensor */
function crop(z: Float32Array, [B, C, H, W]: number[], y0: number, x0: number, h: number, w: number): Float32Array {
  const out = new Float32Array(B * C * h * w);
  for (let bc = 0; bc < B * C; bc++)
    for (let i = 0; i < h; i++)
      out.set(z.subarray((bc * H + y0 + i) * W + x0, (bc * H + y0 + i) * W + x0 + w), (bc * h + i) * w);
  return out;
}

for (const [model, vae, f16] of [
  ['tiny-sd1', sd1, sd1fp16],
  ['tiny-sd2', sd2, undefined],
] as const) {
  test(`${model} decode 32x32 latents to 256x256`, async (t) => {
    const c = cases(model, 'vae_decode_32x32');
    const image = await vae.decode(f32(c.z), [1, 4, 32, 32]);
    t.is(image.length, 3 * 256 * 256);
    const d = maxAbsDiff(image, f32(c.image));
    t.log(`max abs diff ${d.toExponential(2)}`);
    t.true(d <= F32_TOL);
    if (f16) {
      const d16 = maxAbsDiff(await f16.decode(f32(c.z), [1, 4, 32, 32]), f32(c.image));
      t.log(`f16 weights: max abs diff ${d16.toExponential(2)}`);
      t.true(d16 <= F16_DECODE_TOL && d16 > 0);
    }
  });

  test(`${model} encode a 256x256 image to mean and logvar`, async (t) => {
    const c = cases(model, 'vae_encode_256x256');
    const m = await vae.encode(f32(c.image), [1, 3, 256, 256]);
    t.is(m.mean.length, 4 * 32 * 32);
    const d = [maxAbsDiff(m.mean, f32(c.mean)), maxAbsDiff(m.logvar, f32(c.logvar))];
    t.log(`max abs diff mean ${d[0].toExponential(2)}, logvar ${d[1].toExponential(2)}`);
    t.true(Math.max(...d) <= F32_TOL);
    // img2img's starting latents: the fixture's generator noise is (sample - mean) / std
    const noise = f32(c.sample).map((s, i) => (s - f32(c.mean)[i]) / f32(c.std)[i]);
    t.true(maxAbsDiff(sampleLatents(m, noise, 0.18215), f32(c.init_latents)) <= F32_TOL);
    if (f16) {
      const m16 = await f16.encode(f32(c.image), [1, 3, 256, 256]);
      const d16 = Math.max(maxAbsDiff(m16.mean, f32(c.mean)), maxAbsDiff(m16.logvar, f32(c.logvar)));
      t.log(`f16 weights: max abs diff ${d16.toExponential(2)}`);
      t.true(d16 <= F16_ENCODE_TOL && d16 > 0);
    }
  });
}

/** Pearson correlation of a and b over the pixels [y0, y1) x [x0, x1) of every [C, H, W] plane */
function correlation(
  a: Float32Array,
  b: Float32Array,
  [C, H, W]: number[],
  y0: number,
  y1: number,
  x0: number,
  x1: number,
): number {
  let n = 0,
    sa = 0,
    sb = 0,
    saa = 0,
    sbb = 0,
    sab = 0;
  for (let c = 0; c < C; c++)
    for (let y = y0; y < y1; y++)
      for (let x = x0; x < x1; x++) {
        const i = (c * H + y) * W + x;
        n++;
        sa += a[i];
        sb += b[i];
        saa += a[i] * a[i];
        sbb += b[i] * b[i];
        sab += a[i] * b[i];
      }
  return (sab - (sa * sb) / n) / Math.sqrt((saa - (sa * sa) / n) * (sbb - (sb * sb) / n));
}

test('tiled decode approximates the untiled decode (size not divisible by the tile)', async (t) => {
  // 20x28 latents, tiles of 16 with overlap 4: tile rows start at 0, 4; columns at 0, 12.
  const shape = [1, 4, 20, 28] as [number, number, number, number];
  const z = crop(f32(decodeCase.z), [1, 4, 32, 32], 3, 2, 20, 28);
  const tiled = await sd1.decode(z, shape, { tile: { size: 16, overlap: 4 } });
  const full = await sd1.decode(z, shape);
  t.is(tiled.length, full.length);
  t.true(tiled.every(Number.isFinite));
  // Group-norm statistics of the upsampling levels are per tile, so this is approximate; the tiny
  // model has one channel per group (instance norm), which makes it unusually sensitive to that.
  let sum = 0,
    scale = 0;
  for (let i = 0; i < full.length; i++) {
    sum += Math.abs(tiled[i] - full[i]);
    scale += Math.abs(full[i]);
  }
  const meanDiff = sum / full.length,
    meanAbs = scale / full.length;
  const dims = [3, 160, 224];
  // each corner region is decoded by a different tile: all must line up with the untiled image
  const corners = [
    [0, 32, 0, 96],
    [0, 32, 128, 224],
    [128, 160, 0, 96],
    [128, 160, 128, 224],
  ].map(([y0, y1, x0, x1]) => correlation(tiled, full, dims, y0, y1, x0, x1));
  t.log(
    `tiled vs untiled: max abs diff ${maxAbsDiff(tiled, full).toFixed(3)}, mean abs diff ${meanDiff.toFixed(4)} ` +
      `(mean |x| ${meanAbs.toFixed(3)}), correlation ${correlation(tiled, full, dims, 0, 160, 0, 224).toFixed(4)}, ` +
      `per corner tile ${corners.map((c) => c.toFixed(3)).join(', ')}`,
  );
  t.true(meanDiff < 0.3 * meanAbs);
  for (const c of corners) t.true(c > 0.9);
});

test('tiled decode of latents that fit in one tile is the untiled decode', async (t) => {
  const z = crop(f32(decodeCase.z), [1, 4, 32, 32], 0, 0, 4, 6);
  t.deepEqual(await sd1.decode(z, [1, 4, 4, 6], { tile: true }), await sd1.decode(z, [1, 4, 4, 6]));
});

test('bad shapes, sizes and options reject with typed errors', async (t) => {
  const z = new Float32Array(4 * 4 * 4);
  await expectCode(
    t,
    sd1.decode(z, [1, 3, 4, 4]),
    'ERR_INVALID_ARGUMENT',
    /^Expected 4 latent channels for shape\[1\] but received 3$/,
  );
  await expectCode(
    t,
    sd1.decode(z, [1, 4, 4, 5]),
    'ERR_INVALID_ARGUMENT',
    /^Expected 80 values \(shape \[1, 4, 4, 5\]\) for latents but received a Float32Array of length 64$/,
  );
  await expectCode(
    t,
    sd1.decode(z, [1, 4, 4] as never),
    'ERR_INVALID_ARGUMENT',
    /^Expected an array of 4 integers for shape/,
  );
  await expectCode(t, sd1.decode(z, [1, 4, 0, 16]), 'ERR_INVALID_ARGUMENT', /for shape\[2\] but received 0$/);
  await expectCode(
    t,
    sd1.decode(new Float64Array(64) as never, [1, 4, 4, 4]),
    'ERR_INVALID_ARGUMENT',
    /^Expected a Float32Array for latents/,
  );
  await expectCode(
    t,
    sd1.decode(z, [1, 4, 4, 4], { tile: { size: 8, overlap: 5 } }),
    'ERR_INVALID_ARGUMENT',
    /options\.tile\.overlap but received 5$/,
  );
  await expectCode(
    t,
    sd1.decode(z, [1, 4, 4, 4], { tile: { size: 2 } }),
    'ERR_INVALID_ARGUMENT',
    /options\.tile\.size but received 2$/,
  );
  await expectCode(
    t,
    sd1.encode(new Float32Array(3 * 12 * 16), [1, 3, 12, 16]),
    'ERR_INVALID_ARGUMENT',
    /^Expected a height and width that are multiples of 8 for shape/,
  );
  await expectCode(
    t,
    sd1.encode(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]),
    'ERR_INVALID_ARGUMENT',
    /^Expected 3 image channels/,
  );
});

test('bad configs and weights throw typed errors naming the tensor', async (t) => {
  const w = singleFileWeights(tinyFiles.sd1, 'first_stage_model.');
  await expectCode(
    t,
    () => new Vae(w, tinySd2VaeConfig),
    'ERR_SHAPE_MISMATCH',
    /^Expected shape \[32, 4, 3, 3\] for weight "first_stage_model\.decoder\.conv_in\.weight" but received \[64, 4, 3, 3\]$/,
  );
  await expectCode(
    t,
    () => new Vae(w, { ...tinySd1VaeConfig, normGroups: 5 }),
    'ERR_INVALID_ARGUMENT',
    /config\.normGroups/,
  );
  await expectCode(
    t,
    () => new Vae(w, { ...tinySd1VaeConfig, channels: [] }),
    'ERR_INVALID_ARGUMENT',
    /config\.channels/,
  );
  await expectCode(
    t,
    () => new Vae(w, { ...tinySd1VaeConfig, numResBlocks: 3 }),
    'ERR_INVALID_FILE',
    /^Missing weight "first_stage_model\.decoder\.up\.3\.block\.3\.norm1\.weight"/,
  );
  // decoder-only weights: the VAE loads, encode is unsupported
  const decoderOnly = {
    ...w,
    tensors: w.tensors.filter(([n]) => !n.includes('encoder.') && !n.includes('.quant_conv.')),
  };
  const dec = new Vae(decoderOnly, tinySd1VaeConfig, { threads: 1 });
  t.false(dec.hasEncoder);
  t.is(dec.factor, 8);
  await expectCode(t, dec.encode(new Float32Array(3 * 64), [1, 3, 8, 8]), 'ERR_UNSUPPORTED', /no encoder weights/);
  dec.dispose();
});

test('dispose: later calls reject with ERR_DISPOSED', async (t) => {
  const vae = new Vae(singleFileWeights(tinyFiles.sd2, 'first_stage_model.'), tinySd2VaeConfig, { threads: 1 });
  const z = new Float32Array(4 * 2 * 2);
  const running = vae.decode(z, [1, 4, 2, 2]);
  await vae[Symbol.asyncDispose]();
  t.is((await running).length, 3 * 16 * 16);
  await expectCode(t, vae.decode(z, [1, 4, 2, 2]), 'ERR_DISPOSED');
  await expectCode(t, vae.encode(new Float32Array(3 * 64), [1, 3, 8, 8]), 'ERR_DISPOSED');
});
