// Nonsense is refused, not silently run (issue 17): unknown option keys for generate() and loadPipeline(),
// a bad prediction type, a non-.png output path; and progress counts denoising steps whatever the
// sampler's model calls per step (PNDM makes steps + 1, Heun 2·steps − 1).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { loadPipeline } from '../lib/load-pipeline.js';
import { fixture } from './helpers/fixtures.js';

const MODEL = fixture('models/tiny-sd1.safetensors');
const CONFIG = { nativeSize: 256, textEncoder: { heads: 4 } } as never;

test('loadPipeline: unknown keys, a bad prediction type and a non-object config are errors', async (t) => {
  await t.throwsAsync(loadPipeline(MODEL, { dtype: 'f16' } as never), {
    instanceOf: DiffusionError,
    message:
      /Expected one of threads, device, config, prediction for an option name in load options but received "dtype"/,
  });
  await t.throwsAsync(loadPipeline(undefined, { prediction: 'x' } as never), {
    message: 'Expected one of epsilon, v_prediction for prediction but received "x"',
  });
  await t.throwsAsync(loadPipeline(MODEL, { config: [1, 2] } as never), {
    message: /Expected a partial model config object for config but received an array/,
  });
});

test('generate: unknown keys are errors; progress counts denoising steps; toFile wants .png', async (t) => {
  const pipe = await loadPipeline(MODEL, { threads: 1, config: CONFIG });
  t.teardown(() => pipe.dispose());
  await t.throwsAsync(pipe.generate({ prompt: 'x', stpes: 3 } as never), {
    message: /for an option name in options but received "stpes"/,
  });
  await t.throwsAsync(pipe.generate({ prompt: 'x', guidance: { scale: 2, sclae: 3 } } as never), {
    message: /Expected one of method, scale, schedule, rescale for an option name in guidance but received "sclae"/,
  });
  await t.throwsAsync(pipe.generate({ prompt: 'x', width: 96, height: 64 }), {
    message: 'Expected a multiple of 64 for width but received 96',
  });
  for (const sampler of ['pndm', 'heun', 'euler'] as const) {
    const events: string[] = [];
    const r = await pipe.generate({
      prompt: 'x',
      width: 64,
      height: 64,
      steps: 4,
      sampler,
      onProgress: (e) => events.push(`${e.step}/${e.steps}`),
    });
    t.deepEqual(events, ['1/4', '2/4', '3/4', '4/4'], sampler);
    if (sampler === 'euler') {
      const dir = mkdtempSync(join(tmpdir(), 'nd-strict-'));
      await t.throwsAsync(r.image.toFile(join(dir, 'out.jpg')), {
        message: /Expected a path ending in .png \(PNG is the format written\) for path/,
      });
      await t.notThrowsAsync(r.image.toFile(join(dir, 'out.PNG')));
    }
  }
});
