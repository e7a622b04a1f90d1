// Process entry points behind `native-diffusion serve` and `native-diffusion worker`: load the
// models once, start the service or the worker, shut down gracefully on SIGINT/SIGTERM.
// bullmq and ioredis are optional peer dependencies: they load only for `serve --queue` and
// `worker`, so a plain `serve` needs neither installed.
import type { LoadOptions, PipelineLike } from '../api.js';
import { intFlag, jsonObjectFlag, portFlag } from '../cli/flags.js';
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
}

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

function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: string) => {
    if (closing) {
      process.stderr.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    closing = true;
    process.stderr.write(`${signal}: finishing running jobs\n`);
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
    });
  }
  const service = await createService({ backend, logger: flags.log });
  const address = await service.app.listen({ host: flags.host, port });
  process.stdout.write(`listening on ${address}\n`);
  onShutdown(async () => {
    await service.close(graceMs);
    for (const pipeline of models.values()) await pipeline.dispose();
  });
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
  process.stdout.write(`worker ${worker.id} ready\n`);
  onShutdown(async () => {
    await worker.close(int(flags.grace, '--grace'));
    for (const pipeline of models.values()) await pipeline.dispose();
  });
}
