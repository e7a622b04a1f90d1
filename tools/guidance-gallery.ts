// Writes one picture per guidance method side by side (same prompt, seed and steps) for the README:
//   node --import tsx tools/guidance-gallery.ts [--model PATH] [--size N] [--steps N] [--seed N] [--prompt P] -o out.png
// Without --model it uses the embedded default model. Columns: cfg, s-cfg, cfg++, cfg with a cosine
// guidance schedule, cfg with rescale 0.7, characteristic; a 2 px white gutter between them.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { encodePNG } from '../lib/image/png.js';
import { loadPipeline } from '../lib/load-pipeline.js';
import type { GuidanceOptions } from '../lib/options.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    size: { type: 'string', default: '64' },
    steps: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    scale: { type: 'string' },
    prompt: { type: 'string', default: 'a large red circle left of a small blue square' },
    sampler: { type: 'string', default: 'ddim' },
    out: { type: 'string', short: 'o', default: 'guidance.png' },
  },
});

const size = Number(values.size);
const pipe = await loadPipeline(values.model as string);
const scale = values.scale ? Number(values.scale) : undefined;
const methods: Array<[string, GuidanceOptions]> = [
  ['cfg', { method: 'cfg', scale }],
  ['s-cfg', { method: 's-cfg', scale }],
  ['cfg++', { method: 'cfg++', scale: 0.6 }],
  ['cfg, cosine schedule', { method: 'cfg', scale, schedule: 'cosine' }],
  ['cfg, rescale 0.7', { method: 'cfg', scale, rescale: 0.7 }],
  ['characteristic', { method: 'characteristic', scale }],
];
const gutter = 2;
const width = methods.length * size + (methods.length - 1) * gutter;
const grid = new Uint8Array(width * size * 3).fill(255);
for (const [k, [label, guidance]] of methods.entries()) {
  const g = Object.fromEntries(Object.entries(guidance).filter(([, v]) => v !== undefined)) as GuidanceOptions;
  const { image, timings } = await pipe.generate({
    prompt: values.prompt as string,
    width: size,
    height: size,
    steps: Number(values.steps),
    seed: Number(values.seed),
    sampler: values.sampler as never,
    guidance: g,
  });
  for (let y = 0; y < size; y++) {
    grid.set(image.data.subarray(y * size * 3, (y + 1) * size * 3), (y * width + k * (size + gutter)) * 3);
  }
  process.stdout.write(`${label}: ${(timings.totalMs / 1000).toFixed(2)} s\n`);
}
writeFileSync(values.out as string, encodePNG(grid, width, size, 3, { methods: methods.map(([l]) => l).join(' | ') }));
await pipe.dispose();
process.stdout.write(`wrote ${values.out}\n`);
