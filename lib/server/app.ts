// The HTTP service: OpenAI-compatible images endpoint, a job API with server-sent progress,
// models, health, metrics and the web page. It talks to a JobBackend (in process or Redis) and
// never runs model code on the event loop itself.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { DiffusionError } from '../errors.js';
import { ATTENTION_SCALING, GUIDANCE_METHODS, GUIDANCE_SCHEDULES, SAMPLERS, SCHEDULES } from '../options.js';
import { type JobBackend, type JobEvent, type JobSnapshot, ServiceError } from './jobs.js';
import { metricsText } from './metrics.js';
import { parseGenerationRequest } from './validate.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface ServiceOptions {
  backend: JobBackend;
  /** model used when a request names none (default: the first) */
  defaultModel?: string;
  /** request body limit, bytes */
  bodyLimit?: number;
  logger?: boolean;
  /** bearer token required on every endpoint but /health and the page itself (compared in constant time) */
  apiKey?: string;
  /** an origin allowed to call from a browser (CORS); none by default */
  cors?: string;
}

/** Constant-time comparison of a presented key with the configured one (hashes have equal lengths). */
function keyMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Paths anyone may read: the health probe and the static page (it asks for the key and sends it). */
const OPEN_PATHS = new Set(['/health', '/', '/app.js']);

export interface Service {
  app: FastifyInstance;
  backend: JobBackend;
  /** stop accepting, finish running jobs for graceMs then cancel them, close connections */
  close(graceMs?: number): Promise<void>;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

export function isFinished(job: JobSnapshot): boolean {
  return FINISHED.has(job.status);
}

/** Resolves with the job's final snapshot. */
export function waitForDone(backend: JobBackend, id: string): Promise<JobSnapshot> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (job?: JobSnapshot, err?: unknown) => {
      if (settled) return;
      settled = true;
      unsubscribe();
      clearInterval(poll);
      if (job) resolve(job);
      else reject(err);
    };
    const unsubscribe = backend.subscribe(id, (event) => {
      if (event.type === 'done') finish(event.job);
    });
    const check = (first: boolean) =>
      backend.get(id).then(
        (job) => {
          if (!job) finish(undefined, new ServiceError(404, 'ERR_JOB_NOT_FOUND', `No job with id ${id}`));
          else if (isFinished(job)) finish(job);
        },
        (err) => {
          // while Redis is down a poll fails; the job is still there when it returns
          if (first) finish(undefined, err);
        },
      );
    // it may have finished before we subscribed
    void check(true);
    // Redis mode: events sent while the connection was down are lost, so look now and then too
    const poll = backend.kind === 'redis' ? setInterval(() => void check(false), 1000) : undefined;
  });
}

function httpStatusOf(code: string): number {
  switch (code) {
    case 'ERR_INVALID_ARGUMENT':
    case 'ERR_UNSUPPORTED': // something this model cannot do, as asked for by the request
      return 400;
    case 'ERR_TIMEOUT':
      return 504;
    case 'ERR_ABORTED':
      return 409;
    default:
      return 500;
  }
}

function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  return reply.code(status).headers(headers).send({ error: { code, message } });
}

export async function createService(options: ServiceOptions): Promise<Service> {
  const { backend } = options;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1 << 20,
    // close() first lets every response in flight finish, then drops keep-alive connections
    forceCloseConnections: true,
  });
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const streams = new Set<() => void>();
  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    inFlight++;
    reply.raw.once('close', () => inFlight--);
    if (options.cors) {
      reply.header('access-control-allow-origin', options.cors).header('vary', 'origin');
      if (request.method === 'OPTIONS') {
        return reply
          .code(204)
          .header('access-control-allow-methods', 'GET, POST, DELETE')
          .header('access-control-allow-headers', 'authorization, content-type')
          .header('access-control-max-age', '600')
          .send();
      }
    }
    if (options.apiKey && !OPEN_PATHS.has(request.url.split('?')[0])) {
      const header = request.headers.authorization;
      // EventSource and <img> cannot send headers: GET requests may carry the key as ?api_key=
      const query = request.method === 'GET' ? (request.query as { api_key?: unknown }).api_key : undefined;
      const presented = header?.startsWith('Bearer ') ? header.slice(7) : typeof query === 'string' ? query : '';
      if (!keyMatches(presented, options.apiKey)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({
            error: {
              message: presented
                ? 'Incorrect API key provided'
                : 'Missing API key: send it as "Authorization: Bearer <key>"',
              type: 'invalid_request_error',
              param: null,
              code: 'invalid_api_key',
            },
          });
      }
    }
  });
  const startedAt = Date.now();
  let shuttingDown = false;
  const page = readFileSync(join(here, 'public', 'index.html'));
  const script = readFileSync(join(here, 'public', 'app.js'));

  const defaultModel = async () => options.defaultModel ?? (await backend.models()).keys().next().value;

  app.setErrorHandler((err, _request, reply) => {
    if (err instanceof ServiceError) return sendError(reply, err.status, err.code, err.message, err.headers);
    if (err instanceof DiffusionError) return sendError(reply, httpStatusOf(err.code), err.code, err.message);
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // Fastify's own client errors: malformed JSON, wrong content type, body too large
      return sendError(reply, e.statusCode, e.statusCode === 413 ? 'ERR_TOO_LARGE' : 'ERR_INVALID_ARGUMENT', e.message);
    }
    app.log.error(err);
    return sendError(reply, 500, 'ERR_INTERNAL', 'Internal error');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'ERR_NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`),
  );

  app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/app.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').send(script));

  app.get('/health', async (_req, reply) => {
    const dependency = backend.status?.() ?? { ok: true };
    if (shuttingDown || !dependency.ok) reply.code(503);
    return {
      status: shuttingDown ? 'shutting_down' : dependency.ok ? 'ok' : 'unavailable',
      ...(dependency.reason ? { reason: dependency.reason } : {}),
      backend: backend.kind,
      uptimeS: Math.round((Date.now() - startedAt) / 1000),
    };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type('text/plain; version=0.0.4');
    return metricsText(await backend.stats(), loopDelay, backend.memory?.());
  });

  app.get('/v1/models', async () => {
    const models = await backend.models();
    return {
      object: 'list',
      data: [...models].map(([id, m]) => ({
        id,
        object: 'model',
        created: Math.floor(startedAt / 1000),
        owned_by: 'native-diffusion',
        family: m.info.family,
        native_size: `${m.nativeWidth}x${m.nativeHeight}`,
        default_sampler: m.defaultSampler,
        default_steps: m.defaultSteps,
        default_guidance: m.defaultGuidance ?? 7.5,
        // what this model can do: the page offers only these, and other values are a 400
        samplers: m.samplers ?? SAMPLERS,
        prediction_type: m.info.predictionType,
      })),
      // what the generation endpoints accept, so clients (the web page) need not hard-code it
      options: {
        samplers: SAMPLERS,
        schedules: SCHEDULES,
        guidance_methods: GUIDANCE_METHODS.filter((m) => m !== 'characteristic'),
        guidance_schedules: GUIDANCE_SCHEDULES,
        attention_scaling: ATTENTION_SCALING,
      },
    };
  });

  async function submit(body: unknown) {
    if (shuttingDown) throw new ServiceError(503, 'ERR_SHUTTING_DOWN', 'The service is shutting down');
    const parsed = parseGenerationRequest(body, await backend.models(), await defaultModel());
    return { parsed, job: await backend.submit(parsed.job) };
  }

  const jobLinks = (id: string) => ({ self: `/jobs/${id}`, events: `/jobs/${id}/events` });
  const imageUrls = (job: JobSnapshot) =>
    Array.from({ length: job.images ?? 0 }, (_, i) => `/jobs/${job.id}/images/${i}`);
  const publicJob = (job: JobSnapshot) => ({ ...job, links: jobLinks(job.id), image_urls: imageUrls(job) });

  app.post('/v1/images/generations', async (request, reply) => {
    const { parsed, job } = await submit(request.body);
    // A client that goes away cancels its job (the pipeline checks the signal every step).
    const onClose = () => {
      if (!reply.raw.writableFinished) void backend.cancel(job.id, 'the client disconnected');
    };
    reply.raw.on('close', onClose);
    const done = await waitForDone(backend, job.id);
    reply.raw.off('close', onClose);
    if (done.status !== 'succeeded') {
      const error = done.error ?? { code: 'ERR_INTERNAL', message: 'The job failed' };
      return sendError(reply, httpStatusOf(error.code), error.code, error.message);
    }
    const base = `${request.protocol}://${request.host}`;
    const data = [];
    for (let i = 0; i < (done.images ?? 0); i++) {
      const result = done.results?.[i];
      if (parsed.responseFormat === 'url')
        data.push({ url: `${base}/jobs/${done.id}/images/${i}`, seed: result?.seed });
      else data.push({ b64_json: (await backend.image(done.id, i))?.toString('base64'), seed: result?.seed });
    }
    return {
      created: Math.floor((done.finishedAt ?? Date.now()) / 1000),
      data,
      job_id: done.id,
      parameters: done.results?.[0]?.parameters,
    };
  });

  app.post('/jobs', async (_request, reply) => {
    const { job } = await submit(_request.body);
    reply.code(202).header('location', `/jobs/${job.id}`);
    return publicJob(job);
  });

  app.get<{ Params: { id: string } }>('/jobs/:id', async (request) => {
    const job = await backend.get(request.params.id);
    if (!job) throw new ServiceError(404, 'ERR_JOB_NOT_FOUND', `No job with id ${request.params.id}`);
    return publicJob(job);
  });

  app.delete<{ Params: { id: string } }>('/jobs/:id', async (request) => {
    const { id } = request.params;
    const job = await backend.cancel(id);
    if (!job) throw new ServiceError(404, 'ERR_JOB_NOT_FOUND', `No job with id ${id}`);
    // answer with the final state: a running job stops at its next step
    return publicJob(isFinished(job) ? job : await waitForDone(backend, id));
  });

  app.get<{ Params: { id: string; index: string } }>('/jobs/:id/images/:index', async (request, reply) => {
    const index = Number(request.params.index);
    const png = Number.isInteger(index) && index >= 0 ? await backend.image(request.params.id, index) : undefined;
    if (!png)
      throw new ServiceError(
        404,
        'ERR_IMAGE_NOT_FOUND',
        `No image ${request.params.index} for job ${request.params.id}`,
      );
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
  });

  app.get<{ Params: { id: string } }>('/jobs/:id/events', async (request, reply) => {
    const job = await backend.get(request.params.id);
    if (!job) throw new ServiceError(404, 'ERR_JOB_NOT_FOUND', `No job with id ${request.params.id}`);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const write = (type: string, data: unknown) => raw.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      unsubscribe();
      clearInterval(ping);
      streams.delete(end);
      raw.end();
    };
    const send = (event: JobEvent) => {
      if (ended) return;
      if (event.type === 'progress') write('progress', event.progress);
      else write(event.type, publicJob(event.job));
      if (event.type === 'done') end();
    };
    const unsubscribe = backend.subscribe(job.id, send);
    const ping = setInterval(() => raw.write(': ping\n\n'), 15_000);
    streams.add(end);
    raw.on('close', end);
    // the current state first (re-read: it may have changed while subscribing)
    const now = (await backend.get(job.id)) ?? job;
    if (isFinished(now)) send({ type: 'done', job: now });
    else {
      write('status', publicJob(now));
      if (now.progress) write('progress', now.progress);
    }
  });

  await app.ready();

  return {
    app,
    backend,
    async close(graceMs = 10_000) {
      shuttingDown = true;
      await backend.close(graceMs);
      for (const end of [...streams]) end();
      // the jobs are done, so the responses waiting on them are being written: give them a moment
      for (let waited = 0; inFlight > 0 && waited < 2000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      await app.close();
      loopDelay.disable();
    },
  };
}
