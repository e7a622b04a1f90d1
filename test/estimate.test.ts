// pipe.estimate(): memory before a run, derived from shapes (lib/estimate.ts). The U-Net figure is checked
// against the native arena's measured peak (NativeUNet.peakActivationBytes) at several sizes and batches:
// it must cover the measurement without overstating it more than 2×.
import test from 'ava';
import { unetActivationBytes } from '../lib/estimate.js';
import { loadPipeline } from '../lib/load-pipeline.js';
import { detectModel } from '../lib/loading/detect.js';
import { NativeUNet } from '../lib/native/unet.js';
import { fixture } from './helpers/fixtures.js';

const CONFIG = { nativeSize: 256, textEncoder: { heads: 4 } } as never;

test('the U-Net estimate covers the measured arena peak, within 2×', async (t) => {
  const detected = detectModel(fixture('models/tiny-sd1.safetensors'), { config: CONFIG });
  const cfg = detected.config.unet;
  const unet = NativeUNet.create(detected.weights, cfg, { threads: 2 });
  t.teardown(() => unet[Symbol.asyncDispose]());
  for (const [b, h, w] of [
    [1, 8, 8],
    [2, 16, 16],
    [2, 32, 24],
    [1, 64, 64],
  ]) {
    await unet.forward({
      sample: new Float32Array(b * cfg.inChannels * h * w),
      sampleShape: [b, cfg.inChannels, h, w],
      timesteps: 500,
      context: new Float32Array(b * 77 * cfg.contextDim),
      contextShape: [b, 77, cfg.contextDim],
    });
    const measured = unet.peakActivationBytes;
    const estimated = unetActivationBytes(cfg, b, h, w);
    t.log(
      `B=${b} ${h}x${w} latents: measured ${measured} B, estimated ${estimated} B (${(estimated / measured).toFixed(2)}×)`,
    );
    t.true(estimated >= measured, `estimate ${estimated} below the measured ${measured}`);
    t.true(estimated <= 2 * measured, `estimate ${estimated} over twice the measured ${measured}`);
  }
});

test('pipe.estimate(): weights once, activations grow with size and guidance, options validated', async (t) => {
  const pipe = await loadPipeline(fixture('models/tiny-sd1.safetensors'), { threads: 1, config: CONFIG });
  t.teardown(() => pipe.dispose());
  const small = pipe.estimate({ prompt: 'a', width: 64, height: 64 });
  const big = pipe.estimate({ prompt: 'a', width: 512, height: 512 });
  const unguided = pipe.estimate({ prompt: 'a', width: 512, height: 512, guidance: 1 });
  t.is(small.weightsBytes, big.weightsBytes);
  t.true(big.activationBytes > 32 * small.activationBytes);
  t.true(unguided.stages.unet < big.stages.unet);
  t.is(big.totalBytes, big.weightsBytes + big.activationBytes);
  t.throws(() => pipe.estimate({ prompt: 'a', width: 700 }), { message: /for width but received 700/ });
  const layered = await loadPipeline(undefined, { threads: 1 });
  t.teardown(() => layered.dispose());
  const huge = layered.estimate({ prompt: 'a', width: 4096, height: 4096 });
  t.true(huge.activationBytes > 1e10, `4096² on the embedded model: ${huge.activationBytes} bytes`);
  // covers the measured growth of the process's peak RSS for one 256² generation (about 112 MiB)
  t.true(layered.estimate({ prompt: 'a', width: 256, height: 256 }).activationBytes > 112 * 2 ** 20);
});
