// Family descriptions (lib/families.ts): which description runs which detected family, and that Pipeline runs a
// description with several text encoders (their hidden states side by side along channels, as SDXL needs) and
// refuses added conditioning until the native U-Net takes it.
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { FAMILIES, type FamilySpec, familySpec } from '../lib/families.js';
import { detectModel } from '../lib/loading/detect.js';
import { Pipeline } from '../lib/pipeline.js';
import { fixture } from './helpers/fixtures.js';

const SD1_OVERRIDES = { nativeSize: 256, textEncoder: { heads: 4 } } as never;

function tinySd1() {
  return detectModel(fixture('models/tiny-sd1.safetensors'), { config: SD1_OVERRIDES });
}

test('SD 1.x and 2.x run through one description; SDXL and unknown have none yet', (t) => {
  const sd = familySpec('sd1');
  t.truthy(sd);
  t.is(familySpec('sd2'), sd);
  t.is(familySpec('sd2-v'), sd);
  t.is(familySpec('sdxl'), undefined);
  t.is(familySpec('unknown'), undefined);
  t.is(sd!.textEncoders.length, 1);
  t.is(sd!.addedConditioning, undefined);
  // every family appears in at most one description
  const all = FAMILIES.flatMap((f) => f.families);
  t.is(new Set(all).size, all.length);
});

test('hidden state: the checkpoint depth with the final layer norm; SD2 pads with "!"', (t) => {
  const enc = familySpec('sd2')!.textEncoders[0];
  const sd2 = { ...tinySd1().config.textEncoder, layers: 24, defaultLayersToRun: 23, padToken: 0 };
  t.deepEqual(enc.hiddenState(sd2), { layersToRun: 23, finalLayerNorm: true });
  t.deepEqual(enc.tokenizer(sd2), { padToken: '!' });
  t.deepEqual(enc.tokenizer({ ...sd2, padToken: 49407 }), { padToken: '<|endoftext|>' });
});

test('two text encoders: the context is each token’s states side by side', async (t) => {
  const sd = familySpec('sd1')!;
  const two: FamilySpec = { ...sd, textEncoders: [sd.textEncoders[0], sd.textEncoders[0]] };
  const one = new Pipeline(tinySd1(), 1);
  const both = new Pipeline(tinySd1(), 1, two);
  try {
    const C = one.contextDim;
    t.is(both.contextDim, 2 * C);
    const prompt = 'a (red:1.3) apple on a table';
    const a = await one.encodePrompt(prompt);
    const b = await both.encodePrompt(prompt);
    t.is(b.chunks, a.chunks);
    t.is(b.tokens, a.tokens);
    t.is(b.embeddings.length, 2 * a.embeddings.length);
    const expected = new Float32Array(2 * a.embeddings.length);
    for (let k = 0; k < a.embeddings.length / C; k++) {
      const row = a.embeddings.subarray(k * C, (k + 1) * C);
      expected.set(row, 2 * k * C);
      expected.set(row, (2 * k + 1) * C);
    }
    t.deepEqual(b.embeddings, expected);
  } finally {
    await one.dispose();
    await both.dispose();
  }
});

test('added conditioning or a pooled encoder is refused with ERR_UNSUPPORTED', (t) => {
  const sd = familySpec('sd1')!;
  const timeIds: FamilySpec = { ...sd, addedConditioning: { kind: 'text-time', timeIdDim: 256 } };
  const pooled: FamilySpec = { ...sd, textEncoders: [{ ...sd.textEncoders[0], pooled: 'projected' }] };
  for (const family of [timeIds, pooled]) {
    const err = t.throws(() => new Pipeline(tinySd1(), 1, family), { instanceOf: DiffusionError });
    t.is(err?.code, 'ERR_UNSUPPORTED');
    t.regex(err?.message ?? '', /added conditioning/);
  }
});
