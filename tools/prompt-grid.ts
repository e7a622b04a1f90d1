// Writes a grid of pictures for a list of prompts (one row per prompt, one column per seed) for the README:
//   node --import tsx tools/prompt-grid.ts [--model PATH] [--size N] [--steps N] [--seeds 1,2,3] [--scale W]
//     [--upscale K] -o out.png "prompt one" "prompt two" …
// Without --model it uses the embedded default model. --upscale K repeats each pixel K×K (nearest) so that
// 64-px pictures stay visible on a page; a 2 px white gutter separates the cells.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { encodePNG } from '../lib/image/png.js';
import { loadPipeline } from '../lib/load-pipeline.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    size: { type: 'string', default: '64' },
    steps: { type: 'string', default: '20' },
    seeds: { type: 'string', default: '1,2,3,4' },
    scale: { type: 'string' },
    upscale: { type: 'string', default: '2' },
    out: { type: 'string', short: 'o', default: 'prompts.png' },
  },
});

const size = Number(values.size);
const k = Number(values.upscale);
const seeds = (values.seeds as string).split(',').map(Number);
const pipe = await loadPipeline(values.model as string);
const cell = size * k;
const gutter = 2;
const width = seeds.length * cell + (seeds.length - 1) * gutter;
const height = positionals.length * cell + (positionals.length - 1) * gutter;
const grid = new Uint8Array(width * height * 3).fill(255);
for (const [row, prompt] of positionals.entries()) {
  for (const [col, seed] of seeds.entries()) {
    const { image } = await pipe.generate({
      prompt,
      width: size,
      height: size,
      steps: Number(values.steps),
      seed,
      ...(values.scale === undefined ? {} : { guidance: Number(values.scale) }),
    });
    const x0 = col * (cell + gutter);
    const y0 = row * (cell + gutter);
    for (let y = 0; y < cell; y++)
      for (let x = 0; x < cell; x++) {
        const src = (Math.floor(y / k) * size + Math.floor(x / k)) * 3;
        grid.set(image.data.subarray(src, src + 3), ((y0 + y) * width + x0 + x) * 3);
      }
  }
  process.stdout.write(`${prompt}\n`);
}
writeFileSync(values.out as string, encodePNG(grid, width, height, 3, { prompts: positionals.join(' | ') }));
await pipe.dispose();
process.stdout.write(`wrote ${values.out}\n`);
