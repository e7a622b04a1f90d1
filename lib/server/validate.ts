// Request bodies → JobRequest. The service's own fields (size, n, response_format, …) are checked
// here with the library's message style; everything that reaches generate() is checked by the
// library's own resolveOptions() against the named model's defaults, so the HTTP API reports
// exactly the messages the TypeScript API would ("Expected a multiple of 8 for width but received 700").
import { invalid } from '../errors.js';
import { type GenerateOptions, resolveOptions } from '../options.js';
import type { JobRequest } from './run-job.js';

/** What validation needs to know about a model (from a loaded pipeline or a worker's registration). */
export interface ModelDefaults {
  nativeWidth: number;
  nativeHeight: number;
  defaultSampler: string;
  defaultSteps: number;
  /** the model's CFG weight (PipelineInfo.defaultGuidance); 7.5 when a worker did not report one */
  defaultGuidance?: number;
  /** the samplers the model can run (PipelineInfo.samplers); all when a worker did not report them */
  samplers?: readonly string[];
}

export interface ParsedRequest {
  job: JobRequest;
  responseFormat: 'b64_json' | 'url';
}

const OPENAI_IGNORED = new Set(['quality', 'style', 'user', 'output_format', 'background', 'moderation']);
const FIELDS = new Set([
  'model',
  'prompt',
  'n',
  'size',
  'response_format',
  'negative_prompt',
  'width',
  'height',
  'steps',
  'seed',
  'sampler',
  'schedule',
  'eta',
  'guidance',
  'guidance_method',
  'guidance_scale',
  'guidance_schedule',
  'guidance_rescale',
  'attention_scaling',
  'clip_skip',
  'preview',
  'timeout_ms',
]);
export const MAX_IMAGES_PER_JOB = 4;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseSize(size: unknown): { width: number; height: number } {
  if (typeof size !== 'string') invalid("a size 'WxH' such as '512x512'", 'size', size);
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  if (!m) invalid("a size 'WxH' such as '512x512'", 'size', size);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * Validates a body of POST /v1/images/generations or POST /jobs. `models` maps names to defaults;
 * `defaultModel` is used when the body names none. Throws DiffusionError (ERR_INVALID_ARGUMENT) or
 * returns the job to enqueue.
 */
export function parseGenerationRequest(
  body: unknown,
  models: Map<string, ModelDefaults>,
  defaultModel: string | undefined,
): ParsedRequest {
  if (!isObject(body)) invalid('a JSON object', 'request body', body);
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key) && !OPENAI_IGNORED.has(key)) invalid(`one of ${[...FIELDS].join(', ')}`, 'field name', key);
  }
  const model = body.model === undefined ? defaultModel : body.model;
  if (typeof model !== 'string' || !models.has(model))
    invalid(`one of ${[...models.keys()].join(', ') || '(no models loaded)'}`, 'model', model);
  const defaults = models.get(model) as ModelDefaults;
  const n = body.n === undefined ? 1 : body.n;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_IMAGES_PER_JOB)
    invalid(`an integer in [1, ${MAX_IMAGES_PER_JOB}]`, 'n', n);
  const responseFormat = body.response_format === undefined ? 'b64_json' : body.response_format;
  if (responseFormat !== 'b64_json' && responseFormat !== 'url')
    invalid('one of b64_json, url', 'response_format', responseFormat);
  let width = body.width as number | undefined;
  let height = body.height as number | undefined;
  if (body.size !== undefined) {
    if (width !== undefined || height !== undefined)
      invalid('either size or width/height, not both', 'size', body.size);
    ({ width, height } = parseSize(body.size));
  }
  let seed = body.seed;
  if (typeof seed === 'string' && /^\d{1,20}$/.test(seed)) seed = BigInt(seed);
  let guidance = body.guidance as GenerateOptions['guidance'];
  const flat = {
    method: body.guidance_method,
    scale: body.guidance_scale,
    schedule: body.guidance_schedule,
    rescale: body.guidance_rescale,
  };
  if (Object.values(flat).some((v) => v !== undefined)) {
    if (guidance !== undefined) invalid('either guidance or guidance_* fields, not both', 'guidance', guidance);
    guidance = Object.fromEntries(
      Object.entries(flat).filter(([, v]) => v !== undefined),
    ) as GenerateOptions['guidance'];
  }
  if (body.preview !== undefined && typeof body.preview !== 'boolean') invalid('a boolean', 'preview', body.preview);
  const timeoutMs = body.timeout_ms;
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1)) {
    invalid('a positive integer', 'timeout_ms', timeoutMs);
  }
  const options = {
    prompt: body.prompt,
    negativePrompt: body.negative_prompt,
    width,
    height,
    steps: body.steps,
    seed,
    sampler: body.sampler,
    schedule: body.schedule,
    eta: body.eta,
    guidance,
    attentionScaling: body.attention_scaling,
    clipSkip: body.clip_skip,
  } as GenerateOptions;
  // The library's validation, with the library's messages; throws on bad input.
  const resolved = resolveOptions(options, {
    size: defaults.nativeWidth,
    sampler: defaults.defaultSampler as never,
    steps: defaults.defaultSteps,
    guidance: defaults.defaultGuidance,
    samplers: defaults.samplers,
  });
  const job: JobRequest = {
    model,
    prompt: resolved.prompt,
    negativePrompt: resolved.negativePrompt || undefined,
    n,
    width: resolved.width,
    height: resolved.height,
    steps: resolved.steps,
    // a seed is always fixed here so that a retried job (worker lost) reproduces the same image
    seed: String(resolved.seed),
    sampler: resolved.sampler,
    schedule: resolved.schedule,
    eta: body.eta === undefined ? undefined : resolved.eta,
    guidance: resolved.guidance,
    attentionScaling: resolved.attentionScaling,
    clipSkip: resolved.clipSkip || undefined,
    preview: body.preview === true,
    timeoutMs: timeoutMs as number | undefined,
  };
  return { job, responseFormat };
}
