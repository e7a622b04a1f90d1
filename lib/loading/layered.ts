// Our layered model format: a folder with model.safetensors + config.json ("format": "native-diffusion-layered").
// loadLayeredModel opens it on the native LayeredUNet (the LayeredModel wrapper in lib/native/layered.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionError } from '../errors.js';
import { LayeredModel, type LayeredModelConfig } from '../native/layered.js';
import type { NativeWeights } from '../native/weights.js';
import { ClipTokenizer } from '../tokenizer/clip-bpe.js';
import { readSafetensorsHeader } from './safetensors.js';

export function readLayeredConfig(dir: string): { config: LayeredModelConfig; text: string } {
  let text: string;
  try {
    text = readFileSync(join(dir, 'config.json'), 'utf8');
  } catch (err) {
    throw new DiffusionError('ERR_IO', `Could not read ${join(dir, 'config.json')}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let config: LayeredModelConfig;
  try {
    config = JSON.parse(text) as LayeredModelConfig;
  } catch (err) {
    throw new DiffusionError(
      'ERR_INVALID_FILE',
      `Expected JSON in ${join(dir, 'config.json')}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (config.format !== 'native-diffusion-layered') {
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `Expected "native-diffusion-layered" for config.format but received ${JSON.stringify(config.format)}`,
    );
  }
  return { config, text };
}

/** Opens a layered model folder (model.safetensors + config.json) on the native backend. */
export function loadLayeredModel(dir: string, options: { threads?: number; tokenizerDir?: string } = {}): LayeredModel {
  const { config, text } = readLayeredConfig(dir);
  const file = join(dir, config.weights ?? 'model.safetensors');
  const header = readSafetensorsHeader(file);
  const weights: NativeWeights = { files: [file], tensors: header.tensors.map((t) => [t.name, 0, t.name]) };
  return LayeredModel.create(weights, config, text, ClipTokenizer.load(options.tokenizerDir), {
    threads: options.threads,
  });
}
