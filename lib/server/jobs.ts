// Jobs: what a client asks for, what it can see while it runs, and the in-process queue that
// runs them (one per model, bounded concurrency and length). The Redis backend (redis-backend.ts)
// exposes the same JobBackend interface, so the HTTP layer does not know which one it talks to.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { PipelineInfo, PipelineLike } from '../api.js';
import { DiffusionError } from '../errors.js';
import { type JobRequest, type JobResult, runJob } from './run-job.js';
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
}

/** One model's queue. */
class ModelQueue {
  readonly waiting: LocalJob[] = [];
  running = 0;
  completed = 0;
  failed = 0;
  cancelled = 0;
  private runTimes: number[] = [];

  constructor(
    readonly model: string,
    readonly pipeline: PipelineLike,
    readonly options: LocalQueueOptions,
  ) {}

  meanRunMs(): number {
    return this.runTimes.length ? this.runTimes.reduce((a, b) => a + b, 0) / this.runTimes.length : 0;
  }

  recordRun(ms: number): void {
    this.runTimes.push(ms);
    if (this.runTimes.length > 20) this.runTimes.shift();
  }

  /** seconds until a slot is likely free: the queue ahead divided by the concurrency */
  retryAfterSeconds(): number {
    const mean = this.meanRunMs() || 1000;
    return Math.max(1, Math.ceil(((this.waiting.length + 1) * mean) / this.options.concurrency / 1000));
  }
}

export class LocalBackend implements JobBackend {
  readonly kind = 'local' as const;
  private readonly queues = new Map<string, ModelQueue>();
  private readonly jobs = new Map<string, LocalJob>();
  private readonly finished: string[] = [];
  private closing = false;
  private readonly idle = new EventEmitter();

  constructor(models: Map<string, PipelineLike>, options: LocalQueueOptions) {
    for (const [name, pipeline] of models) this.queues.set(name, new ModelQueue(name, pipeline, options));
  }

  async submit(request: JobRequest): Promise<JobSnapshot> {
    if (this.closing) throw new ServiceError(503, 'ERR_SHUTTING_DOWN', 'The service is shutting down');
    const queue = this.queues.get(request.model);
    if (!queue) throw new ServiceError(404, 'ERR_MODEL_NOT_FOUND', `No model named ${JSON.stringify(request.model)}`);
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

  private pump(queue: ModelQueue): void {
    while (queue.running < queue.options.concurrency && queue.waiting.length > 0) {
      const job = queue.waiting.shift() as LocalJob;
      queue.running++;
      void this.run(queue, job).finally(() => {
        queue.running--;
        this.idle.emit('idle');
        this.pump(queue);
      });
    }
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
      queue.recordRun(Date.now() - snapshot.startedAt);
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
