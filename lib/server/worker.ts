// A worker process for the Redis mode: takes jobs for the models it has loaded from BullMQ queues,
// streams progress through job.updateProgress, stores the PNGs as the job's return value and
// honours cancellation (pub/sub) and timeouts. A worker that dies holding a job loses its lock;
// BullMQ's stalled-job check puts the job back in the queue and another worker runs it.
import { hostname } from 'node:os';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { PipelineLike } from '../api.js';
import { modelEntry } from './jobs.js';
import {
  encodeFailure,
  HEARTBEAT_MS,
  keys,
  parseRedisUrl,
  queueName,
  RedisHealth,
  type RegisteredModel,
  type RegisteredWorker,
  type StoredResult,
} from './redis-shared.js';
import { type JobRequest, runJob } from './run-job.js';

export interface WorkerOptions {
  url: string;
  prefix?: string;
  models: Map<string, PipelineLike>;
  /** jobs run at once per model */
  concurrency?: number;
  /** a job's lock lasts this long without renewal; a dead worker's job is retried after about this */
  lockMs?: number;
  /** how often workers look for stalled jobs */
  stalledCheckMs?: number;
  /** per-job limit (ms, 0 = none); a request's own timeout_ms may lower it */
  timeoutMs?: number;
  id?: string;
  log?: (line: string) => void;
}

export interface RunningWorker {
  id: string;
  /** finish running jobs for graceMs, then hand them back to the queue for another worker */
  close(graceMs?: number): Promise<void>;
}

class Cancelled extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const connection = parseRedisUrl(options.url);
  const prefix = options.prefix ?? 'nd';
  const k = keys(prefix);
  const id = options.id ?? `${hostname()}:${process.pid}`;
  const concurrency = options.concurrency ?? 1;
  const log = options.log ?? (() => {});
  const redis = new Redis(connection);
  const subscriber = new Redis(connection);
  const health = new RedisHealth(`worker ${id}`, log);
  health.watch(redis);
  health.watch(subscriber);
  const controllers = new Map<string, AbortController>();
  let closing = false;

  await subscriber.subscribe(k.cancelChannel);
  subscriber.on('message', (_channel, jobId: string) => {
    controllers.get(jobId)?.abort(new Cancelled('ERR_ABORTED', 'cancelled by request'));
  });

  const register = async () => {
    const now = Date.now();
    const multi = redis.multi();
    for (const [name, pipeline] of options.models) {
      const model: RegisteredModel = { entry: modelEntry(pipeline.info), at: now };
      multi.hset(k.models, name, JSON.stringify(model));
    }
    const me: RegisteredWorker = { models: [...options.models.keys()], concurrency, at: now };
    multi.hset(k.workers, id, JSON.stringify(me));
    await multi.exec();
  };
  await register();
  const heartbeat = setInterval(() => void register().catch(() => {}), HEARTBEAT_MS);

  const processor =
    (pipeline: PipelineLike) =>
    async (job: Job<JobRequest, StoredResult>, _token?: string, signal?: AbortSignal): Promise<StoredResult> => {
      const jobId = job.id as string;
      if (await redis.exists(k.cancelled(jobId)))
        throw new UnrecoverableError(encodeFailure('ERR_ABORTED', 'cancelled by request'));
      const controller = new AbortController();
      controllers.set(jobId, controller);
      const onBullAbort = () => controller.abort(new Cancelled('ERR_SHUTDOWN', 'the worker is shutting down'));
      signal?.addEventListener('abort', onBullAbort);
      const limit = Math.min(
        job.data.timeoutMs ?? Number.POSITIVE_INFINITY,
        options.timeoutMs || Number.POSITIVE_INFINITY,
      );
      const timer = Number.isFinite(limit)
        ? setTimeout(
            () => controller.abort(new Cancelled('ERR_TIMEOUT', `The job ran longer than its ${limit} ms limit`)),
            limit,
          )
        : undefined;
      log(`job ${jobId} started (attempt ${job.attemptsStarted})`);
      try {
        const result = await runJob(pipeline, job.data, controller.signal, (progress) => {
          void job.updateProgress({ ...progress, worker: id }).catch(() => {});
        });
        log(`job ${jobId} done`);
        return {
          worker: id,
          images: result.images.map((img) => ({ ...img, png: img.png.toString('base64') })),
        };
      } catch (err) {
        const reason = controller.signal.reason;
        if (reason instanceof Cancelled && reason.code === 'ERR_SHUTDOWN') {
          // a plain error: BullMQ retries it, on another worker
          throw new Error(encodeFailure('ERR_ABORTED', reason.message));
        }
        if (reason instanceof Cancelled) throw new UnrecoverableError(encodeFailure(reason.code, reason.message));
        const e = err as { code?: string; message?: string };
        // the same request would fail the same way elsewhere: no retry
        throw new UnrecoverableError(encodeFailure(e.code ?? 'ERR_INTERNAL', e.message ?? String(err)));
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onBullAbort);
        controllers.delete(jobId);
      }
    };

  const workers = [...options.models].map(
    ([name, pipeline]) =>
      new Worker<JobRequest, StoredResult>(queueName(name), processor(pipeline), {
        connection,
        prefix,
        concurrency,
        lockDuration: options.lockMs ?? 30_000,
        stalledInterval: options.stalledCheckMs ?? 15_000,
        maxStalledCount: 3,
      }),
  );
  // connection errors repeat on every reconnect attempt: RedisHealth logs the change of state once
  for (const w of workers)
    w.on('error', (err) => {
      if (health.up) log(`worker error: ${err.message}`);
    });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log(`worker ${id} ready for ${[...options.models.keys()].join(', ')}`);

  return {
    id,
    async close(graceMs = 10_000) {
      if (closing) return;
      closing = true;
      clearInterval(heartbeat);
      await redis.hdel(k.workers, id).catch(() => {});
      // stop taking new jobs; running ones get graceMs, then go back to the queue
      const closed = Promise.all(workers.map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      if ((await Promise.race([closed, grace])) === 'timeout') {
        for (const c of controllers.values()) c.abort(new Cancelled('ERR_SHUTDOWN', 'the worker is shutting down'));
        await closed;
      }
      clearTimeout(timer);
      await subscriber.quit().catch(() => {});
      await redis.quit().catch(() => {});
    },
  };
}
