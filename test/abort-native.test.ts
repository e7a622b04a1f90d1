// Abort within a native call (native/core/cancel.h, addon/model_call.h): every model call takes a cancel flag
// that the graphs check between blocks (the tiled VAE also between tiles), and the TypeScript wrappers wire an
// AbortSignal to it (lib/native/cancel.ts), so an abort stops a long forward within about one block's time.
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { ClipTextEncoder } from '../lib/native/text-encoder.js';
import { Vae } from '../lib/native/vae.js';
import { singleFileWeights, tinyFiles, tinySd1TextConfig, tinySd1VaeConfig } from './helpers/tiny-models.js';

const vae = new Vae(singleFileWeights(tinyFiles.sd1, 'first_stage_model.'), tinySd1VaeConfig, { threads: 2 });
test.after.always(() => vae.dispose());

test.serial('a signal aborted before the call rejects with ERR_ABORTED and its reason', async (t) => {
  const ac = new AbortController();
  ac.abort(new Error('not now'));
  const e = await t.throwsAsync(vae.decode(new Float32Array(4 * 8 * 8), [1, 4, 8, 8], { signal: ac.signal }), {
    instanceOf: DiffusionError,
  });
  t.is(e?.code, 'ERR_ABORTED');
  t.regex(e?.message ?? '', /not now/);
  // the model still works, with and without a signal
  t.is(
    (await vae.decode(new Float32Array(4 * 8 * 8), [1, 4, 8, 8], { signal: new AbortController().signal })).length,
    3 * 64 * 64,
  );
});

test.serial('an abort during a long tiled decode stops it between blocks, well before it would finish', async (t) => {
  const shape: [number, number, number, number] = [1, 4, 40, 40];
  const latents = new Float32Array(4 * 40 * 40).map((_, i) => Math.sin(i));
  const tile = { size: 16, overlap: 4 }; // 9 tiles
  const t0 = performance.now();
  await vae.decode(latents, shape, { tile });
  const fullMs = performance.now() - t0;

  const ac = new AbortController();
  const started = performance.now();
  let abortedAt = 0;
  setTimeout(() => {
    abortedAt = performance.now();
    ac.abort(new Error('enough'));
  }, fullMs / 4);
  const e = await t.throwsAsync(vae.decode(latents, shape, { tile, signal: ac.signal }), {
    instanceOf: DiffusionError,
  });
  const stoppedMs = performance.now() - abortedAt;
  t.log(
    `full decode ${fullMs.toFixed(0)} ms; aborted at ${(abortedAt - started).toFixed(0)} ms, stopped ${stoppedMs.toFixed(0)} ms later`,
  );
  t.is(e?.code, 'ERR_ABORTED');
  t.regex(e?.message ?? '', /enough/);
  t.true(stoppedMs < Math.max(1000, fullMs / 2), `stopped ${stoppedMs} ms after the abort`);
});

test.serial('the text encoder takes a signal too', async (t) => {
  const te = new ClipTextEncoder(singleFileWeights(tinyFiles.sd1, 'cond_stage_model.'), tinySd1TextConfig, {
    threads: 2,
  });
  const ids = new Int32Array(tinySd1TextConfig.maxPositions).fill(tinySd1TextConfig.padToken);
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  const e = await t.throwsAsync(te.encode(ids, { signal: ac.signal }), { instanceOf: DiffusionError });
  t.is(e?.code, 'ERR_ABORTED');
  t.is((await te.encode(ids, { signal: new AbortController().signal })).length, ids.length * tinySd1TextConfig.hidden);
  te.dispose();
});
