// Checker-based quality numbers for a layered model on the held-out synthetic scenes (DESIGN §7):
// text alignment at the native size; repetition (more objects than asked) at 2x the native side and
// incompleteness (fewer objects than asked) at 0.5x, each with and without attention-entropy scaling.
// Images at other sizes are box-resampled to 64 px for the checker. The lead wires this into `npm run bench -- quality`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLayeredModel } from '../loading/layered.js';
import { torchRandn } from '../noise/torch-rng.js';
import { sampleLayered, toRgbBytes } from '../samplers/layered.js';
import { check, type Scene, toCheckerSize } from './shapes-checker.js';

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
  /** fraction of images passing every check (count, colours+shapes, sizes, positions) */
  alignment: number;
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
  secondsPerImage: number;
}

export const QUALITY_SETTINGS: QualitySetting[] = [
  { name: 'native', scale: 1, entropy: false },
  { name: '2x', scale: 2, entropy: false },
  { name: '2x-entropy', scale: 2, entropy: true },
  { name: 'half', scale: 0.5, entropy: false },
  { name: 'half-entropy', scale: 0.5, entropy: true },
];

export function loadEvalScenes(modelDir: string): Scene[] {
  const raw = JSON.parse(readFileSync(join(modelDir, 'eval-scenes.json'), 'utf8')) as { scenes: Scene[] };
  return raw.scenes;
}

export async function runQualityBench(o: QualityOptions): Promise<QualityRow[]> {
  const model = loadLayeredModel(o.modelDir, { threads: o.threads ?? 0 });
  try {
    const scenes = loadEvalScenes(o.modelDir).slice(0, o.scenes ?? 32);
    const native = model.config.scales[model.config.scales.length - 1];
    const uncond = await model.encodePrompts(['']);
    const rows: QualityRow[] = [];
    for (const setting of QUALITY_SETTINGS.filter((s) => !o.settings || o.settings.includes(s.name))) {
      const size = Math.round(native * setting.scale);
      const hits = { all: 0, count: 0, colours: 0, objects: 0, position: 0, extra: 0, missing: 0 };
      const start = performance.now();
      for (let i = 0; i < scenes.length; i++) {
        const context = await model.encodePrompts([scenes[i].caption]);
        const noise = torchRandn([1, 3, size, size], (o.seed ?? 0) + i);
        const x0 = await sampleLayered(model, {
          noise,
          batch: 1,
          height: size,
          width: size,
          steps: o.steps ?? model.config.sampler?.steps ?? 20,
          guidance: o.guidance ?? model.config.sampler?.guidance ?? 3,
          context,
          uncondContext: uncond,
          contextTokens: model.config.text.max_positions,
          entropyScaling: setting.entropy,
        });
        const rgb = toCheckerSize(toRgbBytes(x0, 1, size, size)[0], size);
        const r = check(rgb, 64, scenes[i]);
        hits.all += +r.allOk;
        hits.count += +r.countOk;
        hits.colours += +r.coloursOk;
        hits.objects += +r.objectsOk;
        hits.position += +r.positionOk;
        hits.extra += +(r.found.length > scenes[i].objects.length);
        hits.missing += +(r.found.length < scenes[i].objects.length);
      }
      const n = scenes.length;
      const row: QualityRow = {
        setting: setting.name,
        size,
        alignment: hits.all / n,
        count: hits.count / n,
        colours: hits.colours / n,
        objects: hits.objects / n,
        position: hits.position / n,
        extraObjects: hits.extra / n,
        missingObjects: hits.missing / n,
        secondsPerImage: (performance.now() - start) / 1000 / n,
      };
      o.log?.(
        `${row.setting.padEnd(13)} ${size}px  align ${row.alignment.toFixed(3)}  count ${row.count.toFixed(3)}  colours ${row.colours.toFixed(3)}  objects ${row.objects.toFixed(3)}  position ${row.position.toFixed(3)}  extra ${row.extraObjects.toFixed(3)}  missing ${row.missingObjects.toFixed(3)}  ${row.secondsPerImage.toFixed(2)} s/img`,
      );
      rows.push(row);
    }
    return rows;
  } finally {
    model.dispose();
  }
}
