// Process entry points behind `native-diffusion serve` and `native-diffusion worker`: load the
// models once, start the service or the worker, shut down gracefully on SIGINT/SIGTERM.
// bullmq and ioredis are optional peer dependencies: they load only for `serve --queue` and
// `worker`, so a plain `serve` needs neither installed.

import { totalmem } from 'node:os';
import type { LoadOptions, PipelineLike } from '../api.js';
import { bytesFlag, intFlag, jsonObjectFlag, portFlag } from '../cli/flags.js';
import { DiffusionError } from '../errors.js';
import { loadPipeline } from '../load-pipeline.js';
import { createService } from './app.js';
import { type JobBackend, LocalBackend } from './jobs.js';

export interface ServeFlags {
  model: string[];
  host: string;
  port: string;
  concurrency: string;
  queueLimit: string;
  timeout: string;
  grace: string;
  keep: string;
  threads?: string;
  config?: string;
  queue?: string;
  prefix: string;
  log?: boolean;
  apiKey?: string;
  cors?: string;
  maxMemory?: string;
  maxPixels?: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface WorkerFlags {
  model: string[];
  queue: string;
  prefix: string;
  concurrency: string;
  timeout: string;
  grace: string;
  lockMs: string;
  stalledMs: string;
  threads?: string;
  config?: string;
}

/** Imports a Redis-mode module, turning a missing bullmq/ioredis into a message saying what to install. */
async function importRedisMode<T>(load: () => Promise<T>, what: string): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const missing = /['"](bullmq|ioredis)['"]/.exec(e.message ?? '')?.[1];
    if (e.code === 'ERR_MODULE_NOT_FOUND' && missing) {
      throw new DiffusionError(
        'ERR_UNSUPPORTED',
        `${what} needs the optional packages bullmq and ioredis (${missing} is not installed): npm install bullmq ioredis`,
      );
    }
    throw err;
  }
}

const int = (value: string, flag: string, min = 0) => intFlag(value, flag, min);

/** `name=path` pairs; a bare path is named after its file. */
export function parseModelSpecs(specs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = eq > 0 ? spec.slice(0, eq) : (spec.split('/').pop() ?? spec).replace(/\.safetensors$/, '');
    const path = eq > 0 ? spec.slice(eq + 1) : spec;
    if (!/^[A-Za-z0-9][\w.-]*$/.test(name) || !path) {
      throw new DiffusionError(
        'ERR_INVALID_ARGUMENT',
        `Expected name=path (name: letters, digits, . _ -) for --model but received ${JSON.stringify(spec)}`,
      );
    }
    if (out.has(name))
      throw new DiffusionError(
        'ERR_INVALID_ARGUMENT',
        `Expected distinct model names for --model but received ${JSON.stringify(name)} twice`,
      );
    out.set(name, path);
  }
  return out;
}

async function loadModels(
  specs: string[],
  flags: { threads?: string; config?: string },
): Promise<Map<string, PipelineLike>> {
  const paths = parseModelSpecs(specs);
  const options: LoadOptions = {
    threads: flags.threads === undefined ? undefined : intFlag(flags.threads, '--threads', 0, 1024),
    config: jsonObjectFlag(flags.config, '--config') as LoadOptions['config'],
  };
  const models = new Map<string, PipelineLike>();
  if (paths.size === 0) {
    // No --model: serve the embedded default model under the name "default".
    models.set('default', await loadPipeline(undefined, options));
    process.stderr.write('loaded default (the embedded model)\n');
  }
  for (const [name, path] of paths) {
    const started = Date.now();
    models.set(name, await loadPipeline(path, options));
    process.stderr.write(`loaded ${name} from ${path} in ${Date.now() - started} ms\n`);
  }
  return models;
}

/** After the grace period the running jobs are aborted; this much more is allowed for them to stop. */
const ABORT_MARGIN_MS = 2000;

function onShutdown(graceMs: number, close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: string) => {
    if (closing) {
      process.stderr.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    closing = true;
    process.stderr.write(`${signal}: finishing running jobs (grace ${graceMs} ms)\n`);
    // A job aborted at the end of the grace period stops at its next abort check; until the native
    // side checks within a step, one step of a huge image can take minutes. Exit regardless.
    // process.exit() would wait for the native step to return (the addon joins its threads on teardown),
    // so the process ends itself with SIGKILL, after saying why.
    setTimeout(() => {
      process.stderr.write('grace period over and a job still running after its abort: killing this process\n');
      process.kill(process.pid, 'SIGKILL');
    }, graceMs + ABORT_MARGIN_MS).unref();
    close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`shutdown failed: ${err}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

export async function runServe(flags: ServeFlags): Promise<void> {
  // every flag is checked before a model loads
  const port = portFlag(flags.port);
  jsonObjectFlag(flags.config, '--config');
  const graceMs = int(flags.grace, '--grace');
  const apiKey = flags.apiKey ?? (process.env.NATIVE_DIFFUSION_API_KEY || undefined);
  if (apiKey !== undefined && apiKey.length < 8)
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      'Expected an API key of at least 8 characters for --api-key but received a shorter one',
    );
  const maxMemoryBytes =
    flags.maxMemory === undefined ? Math.floor(totalmem() * 0.8) : bytesFlag(flags.maxMemory, '--max-memory');
  const maxPixels = flags.maxPixels === undefined ? undefined : intFlag(flags.maxPixels, '--max-pixels', 4096);
  const limit = int(flags.queueLimit, '--queue-limit');
  const timeoutMs = int(flags.timeout, '--timeout');
  const keepFinished = int(flags.keep, '--keep', 1);
  let backend: JobBackend;
  let models = new Map<string, PipelineLike>();
  if (flags.queue) {
    if (flags.model.length > 0)
      process.stderr.write('note: with --queue the workers load the models; --model is ignored here\n');
    const { RedisBackend } = await importRedisMode(() => import('./redis-backend.js'), 'serve --queue');
    backend = new RedisBackend({ url: flags.queue, prefix: flags.prefix, limit, timeoutMs, keepFinished });
  } else {
    models = await loadModels(flags.model, flags);
    backend = new LocalBackend(models, {
      concurrency: int(flags.concurrency, '--concurrency', 1),
      limit,
      timeoutMs,
      keepFinished,
      maxMemoryBytes,
      maxPixels,
    });
    process.stderr.write(
      `memory budget ${Math.round(maxMemoryBytes / 2 ** 20)} MiB${flags.maxMemory === undefined ? ' (80% of RAM; --max-memory)' : ''}` +
        `, weights ${Math.round((backend as LocalBackend).weightsBytes / 2 ** 20)} MiB` +
        `${maxPixels ? `, at most ${maxPixels} pixels per image` : ''}\n`,
    );
  }
  const service = await createService({ backend, logger: flags.log, apiKey, cors: flags.cors });
  onShutdown(graceMs, async () => {
    await service.close(graceMs);
    for (const pipeline of models.values()) await pipeline.dispose();
  });
  const address = await service.app.listen({ host: flags.host, port });
  process.stdout.write(`listening on ${address}\n`);
  if (apiKey) process.stderr.write('API key required (Authorization: Bearer …) on every endpoint but /health\n');
  else if (LOOPBACK.has(flags.host))
    process.stderr.write('no API key: listening on loopback only (set --api-key to serve other machines)\n');
  else
    process.stderr.write(
      `warning: listening on ${flags.host} without an API key: anyone who can reach it can run jobs (set --api-key)\n`,
    );
}

export async function runWorker(flags: WorkerFlags): Promise<void> {
  jsonObjectFlag(flags.config, '--config');
  const { startWorker } = await importRedisMode(() => import('./worker.js'), 'worker');
  const models = await loadModels(flags.model, flags);
  const worker = await startWorker({
    url: flags.queue,
    prefix: flags.prefix,
    models,
    concurrency: int(flags.concurrency, '--concurrency', 1),
    timeoutMs: int(flags.timeout, '--timeout'),
    lockMs: int(flags.lockMs, '--lock-ms', 100),
    stalledCheckMs: int(flags.stalledMs, '--stalled-ms', 100),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const graceMs = int(flags.grace, '--grace');
  onShutdown(graceMs, async () => {
    await worker.close(graceMs);
    for (const pipeline of models.values()) await pipeline.dispose();
  });
  process.stdout.write(`worker ${worker.id} ready\n`);
}
