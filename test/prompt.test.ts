import test from 'ava';
import { BREAK, matchChunkCounts, parsePromptAttention, promptToChunks } from '../lib/text/prompt.js';
import { applyChunkWeights, applyTokenWeights } from '../lib/text/weighting.js';
import { ClipTokenizer } from '../lib/tokenizer/clip-bpe.js';

const sd1 = ClipTokenizer.load();
const sd2 = ClipTokenizer.load(undefined, { padToken: '!' });
const close = (a: number, b: number, eps = 1e-9) => Math.abs(a - b) <= eps * Math.max(1, Math.abs(b));
const simplify = (parts: ReturnType<typeof parsePromptAttention>) =>
  parts.map((p) => (p === BREAK ? 'BREAK' : [p.text, Math.round(p.weight * 1e6) / 1e6]));

test('parse: plain, (x), [x], (x:w), nesting, unclosed, stray, escapes', (t) => {
  t.deepEqual(simplify(parsePromptAttention('a cat')), [['a cat', 1]]);
  t.deepEqual(simplify(parsePromptAttention('a (cat)')), [
    ['a ', 1],
    ['cat', 1.1],
  ]);
  t.deepEqual(simplify(parsePromptAttention('a [cat]')), [
    ['a ', 1],
    ['cat', 0.909091],
  ]);
  t.deepEqual(simplify(parsePromptAttention('(cat:1.5) dog')), [
    ['cat', 1.5],
    [' dog', 1],
  ]);
  t.deepEqual(simplify(parsePromptAttention('((cat))')), [['cat', 1.21]]);
  t.deepEqual(simplify(parsePromptAttention('(a (b:2) c)')), [
    ['a ', 1.1],
    ['b', 2.2],
    [' c', 1.1],
  ]);
  t.deepEqual(simplify(parsePromptAttention('[a (b) c]')), [
    ['a ', 0.909091],
    ['b', 1],
    [' c', 0.909091],
  ]);
  t.deepEqual(simplify(parsePromptAttention('(unclosed')), [['unclosed', 1.1]]);
  t.deepEqual(simplify(parsePromptAttention('stray) and] ok')), [['stray) and] ok', 1]]);
  t.deepEqual(simplify(parsePromptAttention('\\(literal\\) \\[x\\]')), [['(literal) [x]', 1]]);
  t.deepEqual(simplify(parsePromptAttention('a\\\\b')), [['a\\b', 1]]);
  t.deepEqual(simplify(parsePromptAttention('time: 12:30')), [['time: 12:30', 1]]);
  t.deepEqual(simplify(parsePromptAttention('(x: -0.5 )')), [['x', -0.5]]);
  t.deepEqual(simplify(parsePromptAttention('(x:1.2.3)')), [['x:1.2.3)', 1.1]]);
  t.deepEqual(simplify(parsePromptAttention('')), [['', 1]]);
});

test('parse: BREAK only as an upper-case whole word', (t) => {
  t.deepEqual(simplify(parsePromptAttention('a cat BREAK a dog')), [['a cat', 1], 'BREAK', ['a dog', 1]]);
  t.deepEqual(simplify(parsePromptAttention('breakfast, BREAKING, break')), [['breakfast, BREAKING, break', 1]]);
  t.deepEqual(simplify(parsePromptAttention('(a BREAK b)')), [['a', 1.1], 'BREAK', ['b', 1.1]]);
});

test('a prompt without syntax gives exactly the CLIPTokenizer encoding (one chunk)', (t) => {
  for (const tok of [sd1, sd2]) {
    for (const p of ['a photo of an astronaut riding a horse on mars', '', 'Hello, world! wow']) {
      const chunks = promptToChunks(tok, p);
      t.is(chunks.length, 1);
      t.deepEqual(chunks[0].ids, tok.encode(p).inputIds);
      t.true(chunks[0].weights.every((w) => w === 1));
    }
  }
  const lit = promptToChunks(sd1, '(best quality:1.2)', { syntax: false });
  t.deepEqual(lit[0].ids, sd1.encode('(best quality:1.2)').inputIds);
});

test('weights land on the right tokens', (t) => {
  const [chunk] = promptToChunks(sd1, 'a (red:1.5) [cat]');
  const ids = sd1.encodeTokens('a red cat');
  t.deepEqual(chunk.ids.slice(1, 4), ids);
  t.deepEqual(
    chunk.weights.slice(0, 5).map((w) => Math.round(w * 1e6) / 1e6),
    [1, 1, 1.5, 0.909091, 1],
  );
});

test('chunking at 75 tokens: 100 words -> 2 chunks, start/end/pad in each', (t) => {
  const prompt = Array.from({ length: 100 }, () => 'cat').join(' ');
  const chunks = promptToChunks(sd2, prompt);
  t.is(chunks.length, 2);
  const cat = sd2.encodeTokens('cat')[0];
  t.deepEqual(chunks[0].ids, [49406, ...Array(75).fill(cat), 49407]);
  t.deepEqual(chunks[1].ids, [49406, ...Array(25).fill(cat), 49407, ...Array(50).fill(0)]);
  t.is(promptToChunks(sd1, Array(75).fill('cat').join(' ')).length, 1);
  t.is(promptToChunks(sd1, Array(76).fill('cat').join(' ')).length, 2);
});

test('comma backtrack moves the words after a late comma to the next chunk', (t) => {
  const words = [...Array(70).fill('cat'), ',', ...Array(10).fill('dog')].join(' ');
  const chunks = promptToChunks(sd1, words);
  const comma = sd1.encodeTokens(',')[0];
  t.is(chunks[0].ids[71], comma);
  t.is(chunks[0].ids[72], 49407, 'chunk 0 ends after the comma');
  t.is(chunks[1].ids.slice(1, 11).length, 10);
  t.true(chunks[1].ids.slice(1, 11).every((id) => id === sd1.encodeTokens('dog')[0]));
  const noBacktrack = promptToChunks(sd1, words, { commaBacktrack: 0 });
  t.is(noBacktrack[0].ids[75], sd1.encodeTokens('dog')[0]);
});

test('BREAK starts a new chunk; cond/uncond chunk counts are matched with empty-prompt chunks', (t) => {
  const chunks = promptToChunks(sd1, 'a cat BREAK a dog');
  t.is(chunks.length, 2);
  t.deepEqual(chunks[0].ids, sd1.encode('a cat').inputIds);
  t.deepEqual(chunks[1].ids, sd1.encode('a dog').inputIds);
  const m = matchChunkCounts(sd1, chunks, promptToChunks(sd1, 'blurry'));
  t.is(m.uncond.length, 2);
  t.deepEqual(m.uncond[0].ids, sd1.encode('blurry').inputIds);
  t.deepEqual(m.uncond[1].ids, sd1.encode('').inputIds);
  t.is(m.cond.length, 2);
});

function randomEmbeddings(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 0.7;
  }
  return out;
}

test('weighting: all ones returns the input unchanged, bit for bit', (t) => {
  const z = randomEmbeddings(77 * 8, 1);
  const copy = z.slice();
  const out = applyTokenWeights(z, Array(77).fill(1), 77, 8);
  t.is(out, z);
  t.deepEqual(out, copy);
  t.is(applyChunkWeights(z, [Array(77).fill(1)], 8), z);
});

test('weighting: weighted tokens scale by w relative to the rest, mean restored, directions kept', (t) => {
  const C = 8;
  const z = randomEmbeddings(77 * C, 2);
  const w = Array(77).fill(1);
  w[3] = 1.5;
  w[10] = 0.5;
  const out = applyTokenWeights(z, w, 77, C);
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  t.true(close(mean(out), mean(z), 1e-5), `${mean(out)} vs ${mean(z)}`);
  const ratio = out[0] / z[0];
  t.false(close(ratio, 1, 1e-4), 'the rescale actually changes unweighted tokens here');
  for (let tok = 0; tok < 77; tok++) {
    for (let c = 0; c < C; c++) {
      const i = tok * C + c;
      t.true(close(out[i] / z[i], ratio * w[tok], 1e-5), `token ${tok} channel ${c}`);
    }
  }
  const raw = applyTokenWeights(z, w, 77, C, { normalize: false });
  t.true(close(raw[3 * C] / z[3 * C], 1.5, 1e-6));
  t.true(close(raw[0], z[0], 0));
  t.throws(() => applyTokenWeights(z, w.slice(1), 77, C), { code: 'ERR_INVALID_ARGUMENT' } as never);
});

test('weighting across chunks touches only chunks with weights', (t) => {
  const C = 4;
  const z = randomEmbeddings(2 * 77 * C, 3);
  const w2 = Array(77).fill(1);
  w2[5] = 2;
  const out = applyChunkWeights(z, [Array(77).fill(1), w2], C);
  t.not(out, z);
  t.deepEqual(out.subarray(0, 77 * C), z.subarray(0, 77 * C));
  t.deepEqual(out.subarray(77 * C), applyTokenWeights(z.subarray(77 * C), w2, 77, C));
});
