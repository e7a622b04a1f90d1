// Checker-based quality numbers for layered models on the held-out synthetic scenes (docs/design.md §7). A cell is one
// (model, guidance method, size, attention scaling) setting run on N samples: sample i draws scene i mod 64 of
// eval-scenes.json and the torch-compatible noise of seed + i, so every cell sees the same scenes and seeds.
// Samples run in batches (one native forward per step for the whole batch, cond and uncond halves included).
// The checker (shapes-checker.ts) reads the image back as objects; images at other sizes are box-resampled
// to 64 px. Cells of `npm run bench -- quality` (lib/cli/bench/quality.ts):
//   text alignment at native size: CFG vs S-CFG vs CFG++;
//   repetition (more objects than asked) at 2x the native side, with and without entropy scaling;
//   incompleteness (fewer objects than asked) at 0.5x, with and without;
//   layered vs a single-scale baseline model (same format) at equal steps, CFG at native size.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { layeredGuidance } from '../guidance/layered.js';
import { loadLayeredModel } from '../loading/layered.js';
import type { LayeredModel } from '../native/layered.js';
import { torchRandn } from '../noise/torch-rng.js';
import type { GuidanceMethod } from '../options.js';
import { sampleLayered, toRgbBytes } from '../samplers/layered.js';
import { check, type Scene, toCheckerSize } from './shapes-checker.js';

export interface QualityCell {
  name: string;
  /** which model: the one under test or the baseline */
  model: 'model' | 'baseline';
  method: GuidanceMethod;
  /** image side as a multiple of the native side */
  scale: number;
  entropy: boolean;
}

export interface QualityCellRow {
  cell: string;
  model: 'model' | 'baseline';
  method: GuidanceMethod;
  /** guidance weight w, or λ for cfg++ */
  guidance: number;
  size: number;
  entropy: boolean;
  samples: number;
  steps: number;
  /** fraction of images passing every check (count, colours+shapes, sizes, positions) */
  alignment: number;
  /** 95 % half-width of the alignment fraction (normal approximation, √(p(1−p)/n)·1.96) */
  alignmentCi95: number;
  count: number;
  /** the multiset of object colours matches (shape-blind) */
  colours: number;
  /** every asked (colour, shape) pair is found */
  objects: number;
  position: number;
  /** fraction with more objects than asked (repetition) */
  extraObjects: number;
  /** fraction with fewer objects than asked (incompleteness) */
  missingObjects: number;
  /** wall time per image (batched) */
  secondsPerImage: number;
}

export interface QualityCellsOptions {
  modelDir: string;
  baselineDir?: string;
  cells: QualityCell[];
  /** samples per cell (scenes cycle) */
  samples: number;
  steps?: number;
  /** CFG / S-CFG / characteristic weight w (default: the model's config.sampler.guidance) */
  guidance?: number;
  /** CFG++ λ (default 0.6) */
  lambda?: number;
  seed?: number;
  threads?: number;
  /** samples per native forward (default 16) */
  batch?: number;
  /** called with each cell's first images (up to `gridImages`) as RGB, for sample grids */
  onImages?: (cell: QualityCell, size: number, images: Uint8Array[]) => void;
  gridImages?: number;
  log?: (line: string) => void;
}

export function loadEvalScenes(modelDir: string): Scene[] {
  const raw = JSON.parse(readFileSync(join(modelDir, 'eval-scenes.json'), 'utf8')) as { scenes: Scene[] };
  return raw.scenes;
}

/** The standard cells; the baseline cell only when a baseline model is given. */
export function standardCells(withBaseline: boolean): QualityCell[] {
  const cells: QualityCell[] = [
    { name: 'cfg', model: 'model', method: 'cfg', scale: 1, entropy: false },
    { name: 's-cfg', model: 'model', method: 's-cfg', scale: 1, entropy: false },
    { name: 'cfg++', model: 'model', method: 'cfg++', scale: 1, entropy: false },
    { name: '2x', model: 'model', method: 'cfg', scale: 2, entropy: false },
    { name: '2x-entropy', model: 'model', method: 'cfg', scale: 2, entropy: true },
    { name: 'half', model: 'model', method: 'cfg', scale: 0.5, entropy: false },
    { name: 'half-entropy', model: 'model', method: 'cfg', scale: 0.5, entropy: true },
  ];
  if (withBaseline) cells.push({ name: 'baseline-cfg', model: 'baseline', method: 'cfg', scale: 1, entropy: false });
  return cells;
}

export function formatRow(r: QualityCellRow): string {
  const f = (x: number) => x.toFixed(3);
  return (
    `${r.cell.padEnd(13)} ${r.model.padEnd(8)} ${r.method.padEnd(5)} ${String(r.size).padStart(4)}px ` +
    `${r.entropy ? 'entropy' : 'none   '}  n ${r.samples}  align ${f(r.alignment)}±${f(r.alignmentCi95)}  ` +
    `count ${f(r.count)}  colours ${f(r.colours)}  objects ${f(r.objects)}  position ${f(r.position)}  ` +
    `extra ${f(r.extraObjects)}  missing ${f(r.missingObjects)}  ${r.secondsPerImage.toFixed(3)} s/img`
  );
}

async function runCell(
  model: LayeredModel,
  cell: QualityCell,
  scenes: Scene[],
  o: QualityCellsOptions,
  uncond: Float32Array,
): Promise<QualityCellRow> {
  const cfg = model.config;
  const native = cfg.scales[cfg.scales.length - 1];
  const size = Math.round(native * cell.scale);
  const steps = o.steps ?? cfg.sampler?.steps ?? 20;
  const weight = cell.method === 'cfg++' ? (o.lambda ?? 0.6) : (o.guidance ?? cfg.sampler?.guidance ?? 3);
  const guide = layeredGuidance({ method: cell.method, scale: weight, schedule: 'constant', rescale: 0 });
  const tokens = cfg.text.max_positions;
  const per = cfg.in_channels * size * size;
  const batchSize = Math.max(1, o.batch ?? 16);
  const hits = { all: 0, count: 0, colours: 0, objects: 0, position: 0, extra: 0, missing: 0 };
  const grid: Uint8Array[] = [];
  const start = performance.now();
  for (let first = 0; first < o.samples; first += batchSize) {
    const B = Math.min(batchSize, o.samples - first);
    const items = Array.from({ length: B }, (_, k) => first + k);
    const itemScenes = items.map((i) => scenes[i % scenes.length]);
    const context = await model.encodePrompts(itemScenes.map((s) => s.caption));
    const noise = new Float32Array(B * per);
    items.forEach((i, k) => noise.set(torchRandn([1, cfg.in_channels, size, size], (o.seed ?? 0) + i), k * per));
    const x0 = await sampleLayered(model, {
      noise,
      batch: B,
      height: size,
      width: size,
      steps,
      guidance: weight,
      guide,
      context,
      uncondContext: uncond,
      contextTokens: tokens,
      entropyScaling: cell.entropy,
    });
    const images = toRgbBytes(x0, B, size, size);
    images.forEach((img, k) => {
      if (grid.length < (o.gridImages ?? 0)) grid.push(img);
      const scene = itemScenes[k];
      const r = check(toCheckerSize(img, size), 64, scene);
      hits.all += +r.allOk;
      hits.count += +r.countOk;
      hits.colours += +r.coloursOk;
      hits.objects += +r.objectsOk;
      hits.position += +r.positionOk;
      hits.extra += +(r.found.length > scene.objects.length);
      hits.missing += +(r.found.length < scene.objects.length);
    });
  }
  if (grid.length > 0) o.onImages?.(cell, size, grid);
  const n = o.samples;
  const p = hits.all / n;
  return {
    cell: cell.name,
    model: cell.model,
    method: cell.method,
    guidance: weight,
    size,
    entropy: cell.entropy,
    samples: n,
    steps,
    alignment: p,
    alignmentCi95: 1.96 * Math.sqrt((p * (1 - p)) / n),
    count: hits.count / n,
    colours: hits.colours / n,
    objects: hits.objects / n,
    position: hits.position / n,
    extraObjects: hits.extra / n,
    missingObjects: hits.missing / n,
    secondsPerImage: (performance.now() - start) / 1000 / n,
  };
}

/** Runs the given cells; the scenes always come from the model under test. */
export async function runQualityCells(o: QualityCellsOptions): Promise<QualityCellRow[]> {
  if (!Number.isInteger(o.samples) || o.samples < 1) throw new RangeError(`Expected a positive sample count`);
  const scenes = loadEvalScenes(o.modelDir);
  const models = new Map<'model' | 'baseline', LayeredModel>();
  try {
    models.set('model', loadLayeredModel(o.modelDir, { threads: o.threads ?? 0 }));
    if (o.cells.some((c) => c.model === 'baseline')) {
      if (!o.baselineDir) throw new RangeError('Expected a baseline model folder for the baseline cells');
      models.set('baseline', loadLayeredModel(o.baselineDir, { threads: o.threads ?? 0 }));
    }
    const uncond = new Map<'model' | 'baseline', Float32Array>();
    for (const [k, m] of models) uncond.set(k, await m.encodePrompts(['']));
    const rows: QualityCellRow[] = [];
    for (const cell of o.cells) {
      const model = models.get(cell.model)!;
      const row = await runCell(model, cell, scenes, o, uncond.get(cell.model)!);
      o.log?.(formatRow(row));
      rows.push(row);
    }
    return rows;
  } finally {
    for (const m of models.values()) m.dispose();
  }
}

// --- The first version's interface (kept for its callers): CFG only, one row per size setting. ---

export interface QualityOptions {
  modelDir: string;
  /** number of held-out scenes (≤ 64, default 32) */
  scenes?: number;
  steps?: number;
  guidance?: number;
  seed?: number;
  threads?: number;
  /** which settings to run (default all) */
  settings?: QualitySetting['name'][];
  log?: (line: string) => void;
}

export interface QualitySetting {
  name: 'native' | '2x' | '2x-entropy' | 'half' | 'half-entropy';
  scale: number;
  entropy: boolean;
}

export interface QualityRow {
  setting: QualitySetting['name'];
  size: number;
  alignment: number;
  count: number;
  colours: number;
  objects: number;
  position: number;
  extraObjects: number;
  missingObjects: number;
  secondsPerImage: number;
}

export const QUALITY_SETTINGS: QualitySetting[] = [
  { name: 'native', scale: 1, entropy: false },
  { name: '2x', scale: 2, entropy: false },
  { name: '2x-entropy', scale: 2, entropy: true },
  { name: 'half', scale: 0.5, entropy: false },
  { name: 'half-entropy', scale: 0.5, entropy: true },
];

/** One sample per scene (the first `scenes` of eval-scenes.json), CFG, seeds seed + i. */
export async function runQualityBench(o: QualityOptions): Promise<QualityRow[]> {
  const settings = QUALITY_SETTINGS.filter((s) => !o.settings || o.settings.includes(s.name));
  const rows = await runQualityCells({
    modelDir: o.modelDir,
    cells: settings.map((s) => ({ name: s.name, model: 'model', method: 'cfg', scale: s.scale, entropy: s.entropy })),
    samples: Math.min(o.scenes ?? 32, loadEvalScenes(o.modelDir).length),
    steps: o.steps,
    guidance: o.guidance,
    seed: o.seed,
    threads: o.threads,
    log: o.log,
  });
  return rows.map((r) => ({
    setting: r.cell as QualitySetting['name'],
    size: r.size,
    alignment: r.alignment,
    count: r.count,
    colours: r.colours,
    objects: r.objects,
    position: r.position,
    extraObjects: r.extraObjects,
    missingObjects: r.missingObjects,
    secondsPerImage: r.secondsPerImage,
  }));
}
