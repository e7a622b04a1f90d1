// loadPipeline(): a path → the pipeline that runs it, chosen by model family.
//   no path                                    the embedded default model (models/default) → LayeredPipeline
//   folder with "format": "native-diffusion-layered" in config.json                        → LayeredPipeline
//   Stable Diffusion checkpoint (single file or diffusers folder): detected, then the family description that
//   runs its family (lib/families.ts)                                                     → Pipeline
import type { LoadOptions } from './api.js';
import { DiffusionError, invalid } from './errors.js';
import { familySpec } from './families.js';
import { isLayeredModelDir, type LayeredPipeline, loadLayeredPipeline } from './layered-pipeline.js';
import { detectModel } from './loading/detect.js';
import { Pipeline } from './pipeline.js';
import { resolveLoadOptions } from './pipeline-base.js';

/**
 * Opens a model and maps its weights (zero copy); the returned pipeline owns native memory until disposed.
 * No path: the embedded default model (models/default, a layered pixel-space model) as a LayeredPipeline.
 * A folder whose config.json has "format": "native-diffusion-layered": a LayeredPipeline. Otherwise a Stable
 * Diffusion checkpoint (single file or diffusers folder): a Pipeline.
 */
export async function loadPipeline(path?: undefined, options?: LoadOptions): Promise<LayeredPipeline>;
export async function loadPipeline(path: string, options?: LoadOptions): Promise<Pipeline | LayeredPipeline>;
export async function loadPipeline(path?: string, options: LoadOptions = {}): Promise<Pipeline | LayeredPipeline> {
  resolveLoadOptions(options); // unknown keys and bad values fail before anything loads
  if (path === undefined) return loadLayeredPipeline(undefined, options);
  if (typeof path !== 'string' || path.length === 0) invalid('a checkpoint path', 'path', path);
  if (isLayeredModelDir(path)) return loadLayeredPipeline(path, options);
  const { threads } = resolveLoadOptions(options);
  const detected = detectModel(path, { config: options.config as never, prediction: options.prediction });
  const family = familySpec(detected.config.family);
  if (!family) {
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `Expected a Stable Diffusion 1.x or 2.x checkpoint for ${path} but received family ${detected.config.family}`,
    );
  }
  // Building the native graphs maps the files and validates every tensor's shape.
  return new Pipeline(detected, threads, family);
}
