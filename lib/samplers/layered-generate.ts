// One call from prompt to RGB with a layered model: encode prompt + negative prompt, seeded torch-compatible
// initial noise at the top scale, the layered sampler, bytes. The pipeline / CLI default path calls this.
import { invalid } from '../errors.js';
import type { LayeredModel } from '../native/layered.js';
import { torchRandn } from '../noise/torch-rng.js';
import { sampleLayered, toRgbBytes } from './layered.js';

export interface LayeredGenerateOptions {
  prompt: string;
  negativePrompt?: string;
  /** default: the model's native side (64) */
  width?: number;
  height?: number;
  /** default: config.sampler.steps (20) */
  steps?: number;
  /** CFG scale; default: config.sampler.guidance (the value measured best for the model) */
  guidance?: number;
  seed?: number;
  /** 'auto' (default): entropy scaling whenever the size differs from native */
  attentionScaling?: 'auto' | 'entropy' | 'none';
  signal?: AbortSignal;
  onProgress?: (p: { step: number; steps: number }) => void;
}

export interface LayeredImage {
  width: number;
  height: number;
  channels: 3;
  /** RGB, row-major */
  data: Uint8Array;
  seed: number;
}

export async function generateLayered(model: LayeredModel, o: LayeredGenerateOptions): Promise<LayeredImage> {
  const native = model.config.scales[model.config.scales.length - 1];
  const width = o.width ?? native,
    height = o.height ?? native;
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed) || seed < 0) invalid('a non-negative integer', 'seed', seed);
  const scaling = o.attentionScaling ?? 'auto';
  if (!['auto', 'entropy', 'none'].includes(scaling))
    invalid("'auto', 'entropy' or 'none'", 'attentionScaling', scaling);
  const entropy = scaling === 'entropy' || (scaling === 'auto' && (width !== native || height !== native));
  const context = await model.encodePrompts([o.prompt]);
  const uncondContext = await model.encodePrompts([o.negativePrompt ?? '']);
  const x0 = await sampleLayered(model, {
    noise: torchRandn([1, model.config.in_channels, height, width], seed),
    batch: 1,
    height,
    width,
    steps: o.steps ?? model.config.sampler?.steps ?? 20,
    guidance: o.guidance ?? model.config.sampler?.guidance ?? 3,
    context,
    uncondContext,
    contextTokens: model.config.text.max_positions,
    entropyScaling: entropy,
    signal: o.signal,
    onProgress: o.onProgress,
  });
  return { width, height, channels: 3, data: toRgbBytes(x0, 1, height, width)[0], seed };
}
