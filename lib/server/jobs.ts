// Jobs: what a client asks for, what it can see while it runs, and the in-process queue that
// runs them (one per model, bounded concurrency and length). The Redis backend (redis-backend.ts)
// exposes the same JobBackend interface, so the HTTP layer does not know which one it talks to.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { PipelineInfo, PipelineLike } from '../api.js';
import { DiffusionError } from '../errors.js';
import { generateOptions, type JobRequest, type JobResult, runJob } from './run-job.js';
import type { ModelDefaults } from './validate.js';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobProgress {
  /** step within the whole job (n images × steps) */
  step: number;
  steps: number;
  fraction: number;
  etaMs: number;
  elapsedMs: number;
  /** the image being generated, 0-based */
  image: number;
  /** data:image/png;base64 low-resolution latent preview, when the pipeline provides latents */
  preview?: string;
}

export interface JobSnapshot {
  id: string;
  model: string;
  status: JobStatus;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  progress?: JobProgress;
  request: Omit<JobRequest, 'model'>;
  error?: { code: string; message: string };
  /** number of images available at /jobs/:id/images/:index once succeeded */
  images?: number;
  /** per image: seed and parameters string */
  results?: { seed: string; parameters: string; width: number; height: number }[];
  /** which worker ran it (Redis mode: hostname:pid) */
  worker?: string;
  timings?: { queuedMs: number; runMs: number };
}

export type JobEvent =
  | { type: 'status'; job: JobSnapshot }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'done'; job: JobSnapshot };

export class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** What the HTTP layer needs from a queue, in process or on Redis. */
export interface JobBackend {
  readonly kind: 'local' | 'redis';
  submit(request: JobRequest): Promise<JobSnapshot>;
  get(id: string): Promise<JobSnapshot | undefined>;
  /** PNG bytes of a finished job's image */
  image(id: string, index: number): Promise<Buffer | undefined>;
  cancel(id: string, reason?: string): Promise<JobSnapshot | undefined>;
  /** listener gets every event after subscribing; returns the unsubscribe function */
  subscribe(id: string, listener: (event: JobEvent) => void): () => void;
  stats(): Promise<QueueStats[]>;
  /** the models this backend can run, with what validation needs */
  models(): Promise<Map<string, ModelEntry>>;
  /** stop accepting; let running jobs finish for graceMs, then cancel them */
  close(graceMs: number): Promise<void>;
  /** the admission budget and what is reserved of it (in-process queue only) */
  memory?(): { weightsBytes: number; reservedBytes: number; maxMemoryBytes?: number };
  /** whether the backend's dependencies answer (Redis); /health is 503 with the reason when not */
  status?(): { ok: boolean; reason?: string };
}

export interface ModelEntry extends ModelDefaults {
  info: PipelineInfo;
}

export interface QueueStats {
  model: string;
  queued: number;
  running: number;
  concurrency: number;
  limit: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** mean run time of the last jobs, ms */
  meanRunMs: number;
}

interface LocalJob {
  snapshot: JobSnapshot;
  request: JobRequest;
  /** activation bytes reserved while it runs (pipe.estimate) */
  activationBytes: number;
  controller: AbortController;
  result?: JobResult;
  events: EventEmitter;
}

export interface LocalQueueOptions {
  concurrency: number;
  /** jobs waiting beyond the running ones; more get a 429 */
  limit: number;
  /** per-job time limit, ms (0 = none) */
  timeoutMs: number;
  /** finished jobs kept for GET /jobs/:id (oldest dropped first) */
  keepFinished: number;
  /** memory budget in bytes: the models' weights plus the running jobs' activations must fit (413 beyond) */
  maxMemoryBytes?: number;
  /** largest width × height per image (413 beyond) */
  maxPixels?: number;
}

const MiB = 2 ** 20;
const mib = (bytes: number) => `${Math.ceil(bytes / MiB)} MiB`;

/** One model's queue. */
class ModelQueue {
  readonly waiting: LocalJob[] = [];
  running = 0;
  completed = 0;
  failed = 0;
  cancelled = 0;
  private runTimes: number[] = [];
  /** recent run times per unit of work (ms per pixel-step), so the estimate follows each job's size */
  private msPerUnit: number[] = [];
  readonly runningJobs = new Set<LocalJob>();

  constructor(
    readonly model: string,
    readonly pipeline: PipelineLike,
    readonly options: LocalQueueOptions,
  ) {}

  meanRunMs(): number {
    return this.runTimes.length ? this.runTimes.reduce((a, b) => a + b, 0) / this.runTimes.length : 0;
  }

  work(request: JobRequest): number {
    return jobWork(request, this.pipeline.info);
  }

  recordRun(ms: number, request: JobRequest): void {
    this.runTimes.push(ms);
    this.msPerUnit.push(ms / this.work(request));
    if (this.runTimes.length > 20) this.runTimes.shift();
    if (this.msPerUnit.length > 20) this.msPerUnit.shift();
  }

  /**
   * Seconds until this queue has likely worked through what is ahead of a new job: the work of the
   * waiting jobs and what remains of the running ones, at the recent ms per pixel-step, over the
   * concurrency (one 512² job in the history no longer makes every 64² job wait 26 s).
   */
  retryAfterSeconds(): number {
    let ahead = 0;
    for (const job of this.waiting) ahead += this.work(job.request);
    for (const job of this.runningJobs) ahead += this.work(job.request) * (1 - (job.snapshot.progress?.fraction ?? 0));
    return retryAfterSeconds(this.msPerUnit, ahead, this.waiting.length + this.running, this.options.concurrency);
  }
}

export class LocalBackend implements JobBackend {
  readonly kind = 'local' as const;
  private readonly queues = new Map<string, ModelQueue>();
  private readonly jobs = new Map<string, LocalJob>();
  private readonly finished: string[] = [];
  private closing = false;
  private readonly idle = new EventEmitter();
  /** weights of every loaded model (shared by all jobs) */
  readonly weightsBytes: number;
  /** activation bytes of the running jobs */
  private reservedBytes = 0;

  constructor(
    models: Map<string, PipelineLike>,
    private readonly options: LocalQueueOptions,
  ) {
    let weights = 0;
    for (const [name, pipeline] of models) {
      this.queues.set(name, new ModelQueue(name, pipeline, options));
      weights += pipeline.estimate?.({ prompt: '' }).weightsBytes ?? 0;
    }
    this.weightsBytes = weights;
  }

  /** 413 for what can never run here: over --max-pixels, or weights + activations over --max-memory. */
  private admit(queue: ModelQueue, request: JobRequest): number {
    const { info } = queue.pipeline;
    const width = request.width ?? info.nativeWidth;
    const height = request.height ?? info.nativeHeight;
    const { maxPixels, maxMemoryBytes } = this.options;
    if (maxPixels !== undefined && width * height > maxPixels) {
      throw new ServiceError(
        413,
        'ERR_TOO_LARGE',
        `The image ${width}x${height} has ${width * height} pixels; this service takes at most ${maxPixels} per image (--max-pixels)`,
      );
    }
    const estimate = queue.pipeline.estimate?.(generateOptions(request));
    if (!estimate) return 0;
    if (maxMemoryBytes !== undefined && this.weightsBytes + estimate.activationBytes > maxMemoryBytes) {
      throw new ServiceError(
        413,
        'ERR_TOO_LARGE',
        `The job needs about ${mib(estimate.activationBytes)} for ${width}x${height} on top of ${mib(this.weightsBytes)} of loaded weights; ` +
          `the memory budget is ${mib(maxMemoryBytes)} (--max-memory)`,
      );
    }
    return estimate.activationBytes;
  }

  async submit(request: JobRequest): Promise<JobSnapshot> {
    if (this.closing) throw new ServiceError(503, 'ERR_SHUTTING_DOWN', 'The service is shutting down');
    const queue = this.queues.get(request.model);
    if (!queue) throw new ServiceError(404, 'ERR_MODEL_NOT_FOUND', `No model named ${JSON.stringify(request.model)}`);
    const activationBytes = this.admit(queue, request);
    const busy = queue.running >= queue.options.concurrency;
    if (busy && queue.waiting.length >= queue.options.limit) {
      throw new ServiceError(
        429,
        'ERR_QUEUE_FULL',
        `The queue for model ${request.model} is full (${queue.options.limit} waiting)`,
        {
          'retry-after': String(queue.retryAfterSeconds()),
        },
      );
    }
    const { model, ...rest } = request;
    const job: LocalJob = {
      snapshot: { id: randomUUID(), model, status: 'queued', createdAt: Date.now(), request: rest },
      request,
      activationBytes,
      controller: new AbortController(),
      events: new EventEmitter(),
    };
    job.events.setMaxListeners(0);
    this.jobs.set(job.snapshot.id, job);
    queue.waiting.push(job);
    this.pump(queue);
    return { ...job.snapshot };
  }

  async get(id: string): Promise<JobSnapshot | undefined> {
    const job = this.jobs.get(id);
    return job && { ...job.snapshot };
  }

  async image(id: string, index: number): Promise<Buffer | undefined> {
    return this.jobs.get(id)?.result?.images[index]?.png;
  }

  async cancel(id: string, reason = 'cancelled by request'): Promise<JobSnapshot | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (job.snapshot.status === 'queued') {
      const queue = this.queues.get(job.request.model);
      if (queue) queue.waiting.splice(queue.waiting.indexOf(job), 1);
      this.finish(job, 'cancelled', { code: 'ERR_ABORTED', message: reason });
    } else if (job.snapshot.status === 'running') {
      job.controller.abort(new DiffusionError('ERR_ABORTED', reason));
    }
    return { ...job.snapshot };
  }

  subscribe(id: string, listener: (event: JobEvent) => void): () => void {
    const job = this.jobs.get(id);
    if (!job) return () => {};
    job.events.on('event', listener);
    return () => job.events.off('event', listener);
  }

  async models(): Promise<Map<string, ModelEntry>> {
    return new Map([...this.queues].map(([name, q]) => [name, modelEntry(q.pipeline.info)]));
  }

  async stats(): Promise<QueueStats[]> {
    return [...this.queues.values()].map((q) => ({
      model: q.model,
      queued: q.waiting.length,
      running: q.running,
      concurrency: q.options.concurrency,
      limit: q.options.limit,
      completed: q.completed,
      failed: q.failed,
      cancelled: q.cancelled,
      meanRunMs: q.meanRunMs(),
    }));
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    for (const queue of this.queues.values()) {
      for (const job of queue.waiting.splice(0))
        this.finish(job, 'cancelled', { code: 'ERR_ABORTED', message: 'the service is shutting down' });
    }
    const running = () => [...this.queues.values()].reduce((n, q) => n + q.running, 0);
    const drained = new Promise<void>((resolve) => {
      if (running() === 0) return resolve();
      this.idle.on('idle', () => running() === 0 && resolve());
    });
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    if ((await Promise.race([drained, grace])) === 'timeout') {
      for (const job of this.jobs.values()) {
        if (job.snapshot.status === 'running')
          job.controller.abort(new DiffusionError('ERR_ABORTED', 'the service is shutting down'));
      }
      await drained;
    }
    clearTimeout(timer);
  }

  private emit(job: LocalJob, event: JobEvent): void {
    job.events.emit('event', event);
  }

  /** Whether a job's activations fit beside the running ones (a job alone always may start: it was admitted). */
  private fits(job: LocalJob): boolean {
    const budget = this.options.maxMemoryBytes;
    return (
      budget === undefined ||
      this.reservedBytes === 0 ||
      this.weightsBytes + this.reservedBytes + job.activationBytes <= budget
    );
  }

  private pump(queue: ModelQueue): void {
    while (queue.running < queue.options.concurrency && queue.waiting.length > 0 && this.fits(queue.waiting[0])) {
      const job = queue.waiting.shift() as LocalJob;
      queue.running++;
      queue.runningJobs.add(job);
      this.reservedBytes += job.activationBytes;
      void this.run(queue, job).finally(() => {
        queue.running--;
        queue.runningJobs.delete(job);
        this.reservedBytes -= job.activationBytes;
        this.idle.emit('idle');
        // memory freed here may let another model's job start too
        for (const q of this.queues.values()) this.pump(q);
      });
    }
  }

  /** Bytes reserved by running jobs and the budget, for /metrics. */
  memory(): { weightsBytes: number; reservedBytes: number; maxMemoryBytes?: number } {
    return {
      weightsBytes: this.weightsBytes,
      reservedBytes: this.reservedBytes,
      maxMemoryBytes: this.options.maxMemoryBytes,
    };
  }

  private async run(queue: ModelQueue, job: LocalJob): Promise<void> {
    const { snapshot } = job;
    snapshot.status = 'running';
    snapshot.startedAt = Date.now();
    this.emit(job, { type: 'status', job: { ...snapshot } });
    const timeoutMs = Math.min(
      job.request.timeoutMs ?? Number.POSITIVE_INFINITY,
      queue.options.timeoutMs || Number.POSITIVE_INFINITY,
    );
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(
          () =>
            job.controller.abort(
              new ServiceError(504, 'ERR_TIMEOUT', `The job ran longer than its ${timeoutMs} ms limit`),
            ),
          timeoutMs,
        )
      : undefined;
    try {
      job.result = await runJob(queue.pipeline, job.request, job.controller.signal, (progress) => {
        snapshot.progress = progress;
        this.emit(job, { type: 'progress', progress });
      });
      queue.recordRun(Date.now() - snapshot.startedAt, job.request);
      queue.completed++;
      this.finish(job, 'succeeded');
    } catch (err) {
      const reason = job.controller.signal.reason;
      if (reason instanceof ServiceError) {
        queue.failed++;
        this.finish(job, 'failed', { code: reason.code, message: reason.message });
      } else if (job.controller.signal.aborted) {
        queue.cancelled++;
        this.finish(job, 'cancelled', { code: 'ERR_ABORTED', message: (reason as Error)?.message ?? 'cancelled' });
      } else {
        queue.failed++;
        const e = err as { code?: string; message?: string };
        this.finish(job, 'failed', { code: e.code ?? 'ERR_INTERNAL', message: e.message ?? String(err) });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private finish(job: LocalJob, status: JobStatus, error?: { code: string; message: string }): void {
    const { snapshot } = job;
    if (status === 'cancelled' && snapshot.status === 'queued') this.queues.get(job.request.model)!.cancelled++;
    snapshot.status = status;
    snapshot.finishedAt = Date.now();
    // the preview is only useful while running; drop it so finished jobs stay small
    if (snapshot.progress) snapshot.progress = { ...snapshot.progress, preview: undefined };
    if (error) snapshot.error = error;
    if (job.result) {
      snapshot.images = job.result.images.length;
      snapshot.results = job.result.images.map(({ seed, parameters, width, height }) => ({
        seed,
        parameters,
        width,
        height,
      }));
    }
    snapshot.timings = {
      queuedMs: (snapshot.startedAt ?? snapshot.finishedAt) - snapshot.createdAt,
      runMs: snapshot.startedAt ? snapshot.finishedAt - snapshot.startedAt : 0,
    };
    this.emit(job, { type: 'done', job: { ...snapshot } });
    job.events.removeAllListeners();
    this.finished.push(snapshot.id);
    while (this.finished.length > this.keepFinished()) this.jobs.delete(this.finished.shift() as string);
  }

  private keepFinished(): number {
    const first = this.queues.values().next().value;
    return first ? first.options.keepFinished : 100;
  }
}

/** A job's work: images × denoising steps × pixels (what Retry-After estimates scale with). */
export function jobWork(
  request: Pick<JobRequest, 'n' | 'width' | 'height' | 'steps'>,
  model: { nativeWidth: number; nativeHeight: number; defaultSteps: number },
): number {
  const pixels = (request.width ?? model.nativeWidth) * (request.height ?? model.nativeHeight);
  return (request.n ?? 1) * (request.steps ?? model.defaultSteps) * pixels;
}

/**
 * Seconds until `aheadWork` (pixel-steps) is done at the median recent ms per pixel-step over `slots`
 * parallel runs; with no history yet, a second per job ahead.
 */
export function retryAfterSeconds(msPerUnit: number[], aheadWork: number, jobsAhead: number, slots: number): number {
  const sorted = [...msPerUnit].sort((a, b) => a - b);
  if (sorted.length === 0) return Math.max(1, Math.ceil((jobsAhead + 1) / slots));
  return Math.max(1, Math.ceil((aheadWork * sorted[sorted.length >> 1]) / slots / 1000));
}

export function modelEntry(info: PipelineInfo): ModelEntry {
  return {
    nativeWidth: info.nativeWidth,
    nativeHeight: info.nativeHeight,
    defaultSampler: info.defaultSampler,
    defaultSteps: info.defaultSteps,
    defaultGuidance: info.defaultGuidance,
    samplers: info.samplers,
    info,
  };
}
