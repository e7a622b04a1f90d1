// `npm run bench -- quality`: the checker-based quality numbers of a layered model (default: the embedded one)
// on the held-out synthetic scenes — text alignment for CFG vs S-CFG vs CFG++ at native size, repetition at 2x
// and incompleteness at 0.5x with and without attention-entropy scaling, and (with --baseline) layered vs a
// single-scale baseline at equal steps. Fixed seeds: sample i uses scene i mod 64 and seed + i in every cell.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type QualityCell, runQualityCells, standardCells } from '../../bench/quality.js';
import { DiffusionError } from '../../errors.js';
import { encodePNG } from '../../image/png.js';
import { defaultModelDir } from '../../layered-pipeline.js';

export const summary =
  'checker-based quality of a layered model: CFG vs S-CFG vs CFG++, repetition at 2x / incompleteness at 0.5x with and without entropy scaling, layered vs baseline';

const HELP = `Usage: npm run bench -- quality [options]
  --model DIR      layered model folder (default: the embedded model, models/default)
  --baseline DIR   a single-scale baseline in the same format: adds a layered-vs-baseline cell (CFG, equal steps)
  --samples N      samples per cell (default 200; scenes cycle through eval-scenes.json)
  --steps N        DDIM steps (default: the model's config.sampler.steps)
  --guidance W     CFG / S-CFG weight (default: the model's config.sampler.guidance)
  --lambda L       CFG++ λ in [0, 1] (default 0.6)
  --seed S         first seed (default 0): sample i uses seed + i
  --batch N        samples per native forward (default 16)
  --threads N      native threads (default: all cores)
  --cells a,b      only these cells (cfg, s-cfg, cfg++, 2x, 2x-entropy, half, half-entropy, baseline-cfg)
  --grid DIR       write one PNG grid of the first 64 samples per cell into DIR
  --json           print the rows as JSON lines instead of the table`;

function int(value: string | undefined, flag: string, min: number, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min)
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      `Expected an integer >= ${min} for ${flag} but received ${JSON.stringify(value)}`,
    );
  return n;
}

function real(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      `Expected a number in [${min}, ${max}] for ${flag} but received ${JSON.stringify(value)}`,
    );
  return n;
}

/** A grid of up to 8 columns with a 2 px grey gutter. */
export function sampleGrid(images: Uint8Array[], size: number): { data: Uint8Array; width: number; height: number } {
  const cols = Math.min(8, images.length);
  const rows = Math.ceil(images.length / cols);
  const gap = 2;
  const width = cols * size + (cols + 1) * gap;
  const height = rows * size + (rows + 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(128);
  images.forEach((img, k) => {
    const x0 = gap + (k % cols) * (size + gap);
    const y0 = gap + Math.floor(k / cols) * (size + gap);
    for (let y = 0; y < size; y++)
      data.set(img.subarray(y * size * 3, (y + 1) * size * 3), ((y0 + y) * width + x0) * 3);
  });
  return { data, width, height };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      baseline: { type: 'string' },
      samples: { type: 'string' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      lambda: { type: 'string' },
      seed: { type: 'string' },
      batch: { type: 'string' },
      threads: { type: 'string' },
      cells: { type: 'string' },
      grid: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const modelDir = resolve(values.model ?? defaultModelDir);
  const baselineDir = values.baseline === undefined ? undefined : resolve(values.baseline);
  let cells: QualityCell[] = standardCells(baselineDir !== undefined);
  if (values.cells !== undefined) {
    const wanted = values.cells.split(',').map((s) => s.trim());
    const known = standardCells(true).map((c) => c.name);
    for (const w of wanted)
      if (!known.includes(w) || (w === 'baseline-cfg' && !baselineDir))
        throw new DiffusionError(
          'ERR_INVALID_ARGUMENT',
          `Expected cells among ${known.join(', ')} (baseline-cfg needs --baseline) for --cells but received ${JSON.stringify(w)}`,
        );
    cells = cells.filter((c) => wanted.includes(c.name));
  }
  const samples = int(values.samples, '--samples', 1, 200) as number;
  const grid = values.grid === undefined ? undefined : resolve(values.grid);
  if (grid) mkdirSync(grid, { recursive: true });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (!values.json) {
    log(
      `quality bench: ${modelDir}${baselineDir ? ` vs baseline ${baselineDir}` : ''}, ${samples} samples per cell, ` +
        `${cells.length} cells`,
    );
  }
  const started = performance.now();
  const rows = await runQualityCells({
    modelDir,
    baselineDir,
    cells,
    samples,
    steps: int(values.steps, '--steps', 1, undefined),
    guidance: real(values.guidance, '--guidance', 0, 100),
    lambda: real(values.lambda, '--lambda', 0, 1),
    seed: int(values.seed, '--seed', 0, 0),
    batch: int(values.batch, '--batch', 1, 16),
    threads: int(values.threads, '--threads', 0, 0),
    gridImages: grid ? 64 : 0,
    onImages: (cell, size, images) => {
      if (!grid) return;
      const g = sampleGrid(images, size);
      const file = join(grid, `${cell.name}.png`);
      writeFileSync(file, encodePNG(g.data, g.width, g.height, 3));
      if (!values.json) log(`  grid: ${file}`);
    },
    log: values.json ? undefined : log,
  });
  const seconds = (performance.now() - started) / 1000;
  if (values.json) {
    for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
    process.stderr.write(`total ${seconds.toFixed(1)} s for ${rows.length * samples} samples\n`);
    return;
  }
  const by = (name: string) => rows.find((r) => r.cell === name);
  const lines = [`total ${seconds.toFixed(1)} s for ${rows.length * samples} samples`];
  const pair = (label: string, a: string, b: string, key: 'alignment' | 'extraObjects' | 'missingObjects') => {
    const ra = by(a),
      rb = by(b);
    if (ra && rb) lines.push(`${label}: ${a} ${ra[key].toFixed(3)} vs ${b} ${rb[key].toFixed(3)}`);
  };
  pair('text alignment (native)', 'cfg', 's-cfg', 'alignment');
  pair('text alignment (native)', 'cfg', 'cfg++', 'alignment');
  pair('repetition at 2x (extra objects)', '2x', '2x-entropy', 'extraObjects');
  pair('incompleteness at 0.5x (missing objects)', 'half', 'half-entropy', 'missingObjects');
  pair('layered vs baseline (alignment, equal steps)', 'cfg', 'baseline-cfg', 'alignment');
  process.stdout.write(`${lines.join('\n')}\n`);
}
