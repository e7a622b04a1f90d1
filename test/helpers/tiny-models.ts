// Native weight lists and configs of the tiny fixture models (single-file checkpoints, identity names).
import { writeFileSync } from 'node:fs';
import { readSafetensorsHeader } from '../../lib/loading/safetensors.js';
import type { TextEncoderConfig, VaeConfig } from '../../lib/loading/types.js';
import type { NativeWeights } from '../../lib/native/weights.js';
import { fixture } from './fixtures.js';

export const tinyFiles = {
  sd1: 'models/tiny-sd1.safetensors',
  sd1fp16: 'models/tiny-sd1-fp16.safetensors',
  sd2: 'models/tiny-sd2.safetensors',
} as const;

/** Every tensor of a single-file checkpoint whose name starts with `prefix`, under its own name. */
export function singleFileWeights(rel: string, prefix: string): NativeWeights {
  const path = fixture(rel);
  const names = readSafetensorsHeader(path)
    .tensors.map((t) => t.name)
    .filter((n) => n.startsWith(prefix));
  return { files: [path], tensors: names.map((n) => [n, 0, n] as [string, number, string]) };
}

export const tinySd1TextConfig: TextEncoderConfig = {
  kind: 'clip',
  hidden: 32,
  layers: 4,
  heads: 4,
  intermediate: 64,
  vocabSize: 49408,
  maxPositions: 77,
  activation: 'quick_gelu',
  defaultLayersToRun: 4,
  padToken: 49407,
};

/** The SD2 file carries 5 OpenCLIP blocks; SD 2 runs 4 (the penultimate layer) then ln_final. */
export const tinySd2TextConfig: TextEncoderConfig = {
  kind: 'openclip',
  hidden: 32,
  layers: 5,
  heads: 2,
  intermediate: 128,
  vocabSize: 49408,
  maxPositions: 77,
  activation: 'gelu',
  defaultLayersToRun: 4,
  padToken: 0,
};

export const tinySd1VaeConfig: VaeConfig = {
  latentChannels: 4,
  channels: [32, 32, 32, 64],
  numResBlocks: 2,
  scalingFactor: 0.18215,
  normGroups: 32,
};
export const tinySd2VaeConfig: VaeConfig = {
  latentChannels: 4,
  channels: [32, 32, 32, 32],
  numResBlocks: 2,
  scalingFactor: 0.18215,
  normGroups: 32,
};

/** Writes float32 tensors as a plain safetensors file (for weight-layout variants built in tests). */
export function writeF32Safetensors(
  path: string,
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const parts = [
    len,
    json,
    ...Object.values(tensors).map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ];
  writeFileSync(path, Buffer.concat(parts));
}
