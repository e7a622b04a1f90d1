// Runs one job on a loaded pipeline: n images (seeds seed, seed+1, …), progress over the whole job,
// and an optional low-resolution preview of the latents. Shared by the in-process queue and the
// Redis worker, so both produce the same results and events.
import type { PipelineLike } from '../api.js';
import type { GenerateOptions, GuidanceOptions, ProgressEvent } from '../options.js';
import type { JobProgress } from './jobs.js';
import { encodeImagePNG } from './png-pool.js';
import { latentPreview } from './preview.js';

/** A validated request, JSON-serialisable (it travels through Redis). */
export interface JobRequest {
  model: string;
  prompt: string;
  negativePrompt?: string;
  n: number;
  width?: number;
  height?: number;
  steps?: number;
  /** decimal string so 64-bit seeds survive JSON */
  seed?: string;
  sampler?: string;
  schedule?: string;
  eta?: number;
  guidance?: number | GuidanceOptions;
  attentionScaling?: string;
  clipSkip?: number;
  /** send low-resolution previews with the progress events */
  preview?: boolean;
  timeoutMs?: number;
}

export interface JobImage {
  png: Buffer;
  seed: string;
  parameters: string;
  width: number;
  height: number;
}

export interface JobResult {
  images: JobImage[];
}

/** Minimum interval between previews: encoding one costs ~1 ms, a step on a real model far more. */
const PREVIEW_INTERVAL_MS = 200;

/** The generate() options of image `index` of a job (seeds seed, seed+1, …), without signal and progress. */
export function generateOptions(request: JobRequest, index = 0): GenerateOptions {
  const baseSeed = request.seed === undefined ? undefined : BigInt(request.seed);
  return {
    prompt: request.prompt,
    negativePrompt: request.negativePrompt,
    width: request.width,
    height: request.height,
    steps: request.steps,
    seed: baseSeed === undefined ? undefined : baseSeed + BigInt(index),
    sampler: request.sampler as never,
    schedule: request.schedule as never,
    eta: request.eta,
    guidance: request.guidance,
    attentionScaling: request.attentionScaling as never,
    clipSkip: request.clipSkip,
  };
}

export async function runJob(
  pipeline: PipelineLike,
  request: JobRequest,
  signal: AbortSignal,
  onProgress: (progress: JobProgress) => void,
): Promise<JobResult> {
  const images: JobImage[] = [];
  const started = Date.now();
  let lastPreview = 0;
  for (let i = 0; i < request.n; i++) {
    signal.throwIfAborted();
    const result = await pipeline.generate({
      ...generateOptions(request, i),
      signal,
      onProgress: (event: ProgressEvent) => {
        const total = event.steps * request.n;
        const step = i * event.steps + event.step;
        const elapsedMs = Date.now() - started;
        const progress: JobProgress = {
          step,
          steps: total,
          fraction: step / total,
          elapsedMs,
          etaMs: step > 0 ? Math.round((elapsedMs / step) * (total - step)) : 0,
          image: i,
        };
        const now = Date.now();
        if (
          request.preview &&
          event.latents &&
          (now - lastPreview >= PREVIEW_INTERVAL_MS || event.step === event.steps)
        ) {
          const preview = latentPreview(
            event.latents,
            request.width ?? pipeline.info.nativeWidth,
            request.height ?? pipeline.info.nativeHeight,
          );
          if (preview) progress.preview = preview;
          lastPreview = now;
        }
        onProgress(progress);
      },
    });
    images.push({
      png: await encodeImagePNG(result.image),
      seed: String(result.seed),
      parameters: result.parameters,
      width: result.image.width,
      height: result.image.height,
    });
  }
  return { images };
}
