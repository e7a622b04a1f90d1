// The JobBackend of `serve --queue redis://…`: jobs go to one BullMQ queue per model, workers
// (worker.ts, any number of processes or machines) run them, results stay in Redis and are read
// back by job id. Progress and completion arrive through BullMQ's QueueEvents stream.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import {
  type JobBackend,
  type JobEvent,
  type JobProgress,
  type JobSnapshot,
  type JobStatus,
  jobWork,
  type ModelEntry,
  type QueueStats,
  retryAfterSeconds,
  ServiceError,
} from './jobs.js';
import {
  decodeFailure,
  keys,
  parseRedisUrl,
  queueName,
  RedisHealth,
  type RegisteredModel,
  type RegisteredWorker,
  STALE_MS,
  type StoredResult,
} from './redis-shared.js';
import type { JobRequest } from './run-job.js';

export interface RedisBackendOptions {
  url: string;
  prefix?: string;
  /** waiting jobs per model beyond which submissions get a 429 */
  limit: number;
  /** per-job limit, ms (0 = none), enforced by the workers */
  timeoutMs: number;
  /** finished jobs kept in Redis per model */
  keepFinished: number;
  /** attempts for a job whose worker shut down mid-job (a dead worker's job is retried regardless) */
  attempts?: number;
  /** where the one line per Redis state change goes (default: stderr) */
  log?: (line: string) => void;
}

/** Seconds a client is told to wait while Redis is down (it reconnects every 2 s at most). */
const RETRY_WHILE_DOWN_S = 5;

type BullJob = Job<JobRequest, StoredResult>;

export class RedisBackend implements JobBackend {
  readonly kind = 'redis' as const;
  private readonly connection;
  private readonly k;
  private readonly prefix: string;
  private readonly redis: Redis;
  private readonly queues = new Map<string, { queue: Queue; events: QueueEvents }>();
  private readonly listeners = new EventEmitter();
  private readonly runTimes: number[] = [];
  /** recent run times per pixel-step (jobWork), for Retry-After */
  private readonly msPerUnit: number[] = [];
  private closing = false;
  private modelCache?: { at: number; models: Map<string, ModelEntry>; workers: RegisteredWorker[] };

  constructor(private readonly options: RedisBackendOptions) {
    this.connection = parseRedisUrl(options.url);
    this.prefix = options.prefix ?? 'nd';
    this.k = keys(this.prefix);
    // commands fail at once while Redis is down (no offline queue), so requests get a 503, not a hang
    this.redis = new Redis({ ...this.connection, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.health = new RedisHealth('service', options.log ?? ((line) => process.stderr.write(`${line}\n`)));
    this.health.watch(this.redis);
    this.listeners.setMaxListeners(0);
  }

  private readonly health: RedisHealth;

  /** Redis reachable or not, with the reason: /health answers 503 while it is not. */
  status(): { ok: boolean; reason?: string } {
    return this.health.up ? { ok: true } : { ok: false, reason: `Redis is unreachable: ${this.health.reason}` };
  }

  /** 503 with Retry-After while Redis is down; the client tries again, nothing is half-submitted. */
  private requireRedis(): void {
    if (this.health.up) return;
    throw new ServiceError(
      503,
      'ERR_UNAVAILABLE',
      `The job queue is unavailable: Redis is unreachable (${this.health.reason}); try again shortly`,
      { 'retry-after': String(RETRY_WHILE_DOWN_S) },
    );
  }

  /** Models registered by live workers (cached for a second). */
  async models(): Promise<Map<string, ModelEntry>> {
    return (await this.registry()).models;
  }

  private async registry() {
    this.requireRedis();
    if (this.modelCache && Date.now() - this.modelCache.at < 1000) return this.modelCache;
    const [models, workers] = await Promise.all([
      this.redis.hgetall(this.k.models),
      this.redis.hgetall(this.k.workers),
    ]);
    const now = Date.now();
    const live = Object.values(workers)
      .map((w) => JSON.parse(w) as RegisteredWorker)
      .filter((w) => now - w.at < STALE_MS);
    const served = new Set(live.flatMap((w) => w.models));
    const map = new Map<string, ModelEntry>();
    for (const [name, json] of Object.entries(models).sort()) {
      if (served.has(name)) map.set(name, (JSON.parse(json) as RegisteredModel).entry);
    }
    this.modelCache = { at: now, models: map, workers: live };
    for (const name of map.keys()) await this.queueOf(name);
    return this.modelCache;
  }

  private async queueOf(model: string) {
    let q = this.queues.get(model);
    if (!q) {
      const queue = new Queue(queueName(model), { connection: this.connection, prefix: this.prefix });
      const events = new QueueEvents(queueName(model), { connection: this.connection, prefix: this.prefix });
      q = { queue, events };
      this.queues.set(model, q);
      events.on('progress', ({ jobId, data }) =>
        this.listeners.emit(jobId, { type: 'progress', progress: data as unknown as JobProgress }),
      );
      const onState = (jobId: string) => void this.emitSnapshot(model, jobId);
      events.on('active', ({ jobId }) => onState(jobId));
      events.on('waiting', ({ jobId }) => onState(jobId));
      events.on('completed', ({ jobId }) => onState(jobId));
      events.on('failed', ({ jobId }) => onState(jobId));
      // BullMQ reconnects these itself; the state change is logged once, from this.redis (health)
      events.on('error', () => {});
      queue.on('error', () => {});
      await events.waitUntilReady();
    }
    return q;
  }

  private async emitSnapshot(model: string, jobId: string): Promise<void> {
    const snapshot = await this.snapshotOf(model, jobId);
    if (!snapshot) return;
    const finished = ['succeeded', 'failed', 'cancelled'].includes(snapshot.status);
    if (finished && snapshot.status === 'succeeded' && snapshot.timings) {
      this.runTimes.push(snapshot.timings.runMs);
      if (this.runTimes.length > 20) this.runTimes.shift();
      const entry = this.modelCache?.models.get(model);
      if (entry) {
        this.msPerUnit.push(snapshot.timings.runMs / jobWork(snapshot.request, entry));
        if (this.msPerUnit.length > 20) this.msPerUnit.shift();
      }
    }
    this.listeners.emit(jobId, finished ? { type: 'done', job: snapshot } : { type: 'status', job: snapshot });
  }

  private async snapshotOf(model: string, jobId: string): Promise<JobSnapshot | undefined> {
    const job = (await (await this.queueOf(model)).queue.getJob(jobId)) as BullJob | undefined;
    if (!job) {
      const removed = await this.redis.get(this.k.removed(jobId));
      return removed ? (JSON.parse(removed) as JobSnapshot) : undefined;
    }
    return this.toSnapshot(model, job, await job.getState());
  }

  private toSnapshot(model: string, job: BullJob, state: string): JobSnapshot {
    const { model: _model, ...request } = job.data;
    let status: JobStatus = 'queued';
    let error: JobSnapshot['error'];
    if (state === 'active') status = 'running';
    else if (state === 'completed') status = 'succeeded';
    else if (state === 'failed') {
      error = decodeFailure(job.failedReason);
      status = error.code === 'ERR_ABORTED' ? 'cancelled' : 'failed';
    }
    const progress =
      typeof job.progress === 'object' ? (job.progress as unknown as JobProgress & { worker?: string }) : undefined;
    const result = job.returnvalue as StoredResult | null;
    const snapshot: JobSnapshot = {
      id: job.id as string,
      model,
      status,
      createdAt: job.timestamp,
      startedAt: job.processedOn ?? undefined,
      finishedAt: status === 'queued' || status === 'running' ? undefined : (job.finishedOn ?? undefined),
      progress: progress && (status === 'running' ? progress : { ...progress, preview: undefined }),
      request,
      error,
      worker: result?.worker ?? progress?.worker,
    };
    if (status === 'succeeded' && result) {
      snapshot.images = result.images.length;
      snapshot.results = result.images.map(({ seed, parameters, width, height }) => ({
        seed,
        parameters,
        width,
        height,
      }));
    }
    if (snapshot.finishedAt) {
      snapshot.timings = {
        queuedMs: (snapshot.startedAt ?? snapshot.finishedAt) - snapshot.createdAt,
        runMs: snapshot.startedAt ? snapshot.finishedAt - snapshot.startedAt : 0,
      };
    }
    return snapshot;
  }

  async submit(request: JobRequest): Promise<JobSnapshot> {
    if (this.closing) throw new ServiceError(503, 'ERR_SHUTTING_DOWN', 'The service is shutting down');
    const { models, workers } = await this.registry();
    if (!models.has(request.model))
      throw new ServiceError(
        404,
        'ERR_MODEL_NOT_FOUND',
        `No worker serves a model named ${JSON.stringify(request.model)}`,
      );
    const { queue } = await this.queueOf(request.model);
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed');
    const waiting = counts.waiting + counts.prioritized + counts.delayed;
    if (waiting >= this.options.limit) {
      const slots = Math.max(
        1,
        workers.filter((w) => w.models.includes(request.model)).reduce((n, w) => n + w.concurrency, 0),
      );
      // the work ahead, per job size, at the recent ms per pixel-step (as the in-process queue does)
      const entry = models.get(request.model) as ModelEntry;
      const ahead = (await queue.getJobs(
        ['waiting', 'prioritized', 'delayed', 'active'],
        0,
        4 * this.options.limit,
      )) as BullJob[];
      let work = 0;
      for (const job of ahead) {
        const progress = job.progress as { fraction?: number } | number;
        work += jobWork(job.data, entry) * (1 - (typeof progress === 'object' ? (progress.fraction ?? 0) : 0));
      }
      throw new ServiceError(
        429,
        'ERR_QUEUE_FULL',
        `The queue for model ${request.model} is full (${this.options.limit} waiting)`,
        { 'retry-after': String(retryAfterSeconds(this.msPerUnit, work, ahead.length, slots)) },
      );
    }
    const timeoutMs = Math.min(
      request.timeoutMs ?? Number.POSITIVE_INFINITY,
      this.options.timeoutMs || Number.POSITIVE_INFINITY,
    );
    const data: JobRequest = { ...request, timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : undefined };
    const job = (await queue.add('generate', data, {
      jobId: randomUUID(),
      attempts: this.options.attempts ?? 3,
      removeOnComplete: { count: this.options.keepFinished },
      removeOnFail: { count: this.options.keepFinished },
    })) as BullJob;
    return this.toSnapshot(request.model, job, 'waiting');
  }

  /** The job and its model: ids are unique across the model queues. */
  private async find(id: string): Promise<{ model: string; job?: BullJob; removed?: JobSnapshot } | undefined> {
    for (const model of (await this.models()).keys()) {
      const job = (await (await this.queueOf(model)).queue.getJob(id)) as BullJob | undefined;
      if (job) return { model, job };
    }
    const removed = await this.redis.get(this.k.removed(id));
    if (removed) {
      const snapshot = JSON.parse(removed) as JobSnapshot;
      return { model: snapshot.model, removed: snapshot };
    }
    return undefined;
  }

  async get(id: string): Promise<JobSnapshot | undefined> {
    this.requireRedis();
    const found = await this.find(id);
    if (!found) return undefined;
    return found.job ? this.toSnapshot(found.model, found.job, await found.job.getState()) : found.removed;
  }

  async image(id: string, index: number): Promise<Buffer | undefined> {
    this.requireRedis();
    const found = await this.find(id);
    const png = (found?.job?.returnvalue as StoredResult | null)?.images[index]?.png;
    return png === undefined ? undefined : Buffer.from(png, 'base64');
  }

  async cancel(id: string, reason = 'cancelled by request'): Promise<JobSnapshot | undefined> {
    this.requireRedis();
    const found = await this.find(id);
    if (!found?.job) return found?.removed;
    const { job, model } = found;
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return this.toSnapshot(model, job, state);
    // a worker that picks it up from now on refuses it; one running it stops at its next step
    await this.redis.set(this.k.cancelled(id), '1', 'EX', 3600);
    if (state !== 'active') {
      try {
        await job.remove();
        const snapshot: JobSnapshot = {
          ...this.toSnapshot(model, job, 'waiting'),
          status: 'cancelled',
          finishedAt: Date.now(),
          error: { code: 'ERR_ABORTED', message: reason },
        };
        await this.redis.set(this.k.removed(id), JSON.stringify(snapshot), 'EX', 3600);
        this.listeners.emit(id, { type: 'done', job: snapshot });
        return snapshot;
      } catch {
        // it became active meanwhile: fall through to the running case
      }
    }
    await this.redis.publish(this.k.cancelChannel, id);
    return this.toSnapshot(model, job, await job.getState());
  }

  subscribe(id: string, listener: (event: JobEvent) => void): () => void {
    this.listeners.on(id, listener);
    return () => this.listeners.off(id, listener);
  }

  async stats(): Promise<QueueStats[]> {
    const { models, workers } = await this.registry();
    const out: QueueStats[] = [];
    for (const model of models.keys()) {
      const { queue } = await this.queueOf(model);
      const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
      out.push({
        model,
        queued: c.waiting + c.prioritized + c.delayed,
        running: c.active,
        concurrency: workers.filter((w) => w.models.includes(model)).reduce((n, w) => n + w.concurrency, 0),
        limit: this.options.limit,
        completed: c.completed,
        failed: c.failed,
        cancelled: 0,
        meanRunMs: this.runTimes.length ? this.runTimes.reduce((a, b) => a + b, 0) / this.runTimes.length : 0,
      });
    }
    return out;
  }

  /** The jobs belong to the workers: the server only stops accepting and lets go of Redis. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.queues.values()].flatMap(({ queue, events }) => [queue.close(), events.close()]));
    await this.redis.quit().catch(() => {});
  }
}
