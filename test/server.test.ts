// The HTTP service (examples/server) against a fake pipeline: every endpoint, the error paths,
// cancellation, abort on disconnect, the 429 path, timeouts and graceful shutdown.
import test from 'ava';
import { readPNGText } from '../lib/image/png.js';
import { FakePipeline } from './helpers/fake-pipeline.js';
import { getJSON, postJSON, readEvents, startLocal, until } from './helpers/server.js';

const pngSize = (b: Buffer) => ({ width: b.readUInt32BE(16), height: b.readUInt32BE(20) });

test('health, models and metrics', async (t) => {
  const { service, url } = await startLocal(new Map([['tiny', new FakePipeline()]]));
  t.teardown(() => service.close(0));
  const health = await getJSON(`${url}/health`);
  t.is(health.status, 200);
  t.is(health.body.status, 'ok');
  const models = await getJSON(`${url}/v1/models`);
  t.is(models.body.object, 'list');
  t.deepEqual(
    models.body.data.map((m: any) => [m.id, m.native_size]),
    [['tiny', '64x64']],
  );
  t.true(models.body.options.samplers.includes('dpmpp-2m'));
  const metrics = await getJSON(`${url}/metrics`);
  t.regex(metrics.body, /nd_queue_waiting\{model="tiny"\} 0/);
  t.regex(metrics.body, /process_resident_memory_bytes \d+/);
  const page = await fetch(`${url}/`);
  t.regex(await page.text(), /<textarea id="prompt"/);
  t.is((await getJSON(`${url}/nope`)).body.error.code, 'ERR_NOT_FOUND');
});

test('OpenAI images endpoint: b64_json, url, n and our own options', async (t) => {
  const fake = new FakePipeline({ stepMs: 2 });
  const { service, url } = await startLocal(new Map([['tiny', fake]]));
  t.teardown(() => service.close(0));
  const r = await postJSON(`${url}/v1/images/generations`, {
    prompt: 'a red apple',
    size: '64x128',
    n: 2,
    seed: 7,
    steps: 3,
    sampler: 'dpmpp-2m',
    guidance: { method: 's-cfg', scale: 5 },
    attention_scaling: 'entropy',
  });
  t.is(r.status, 200, JSON.stringify(r.body));
  t.is(r.body.data.length, 2);
  t.deepEqual(
    r.body.data.map((d: any) => d.seed),
    ['7', '8'],
  );
  const png = Buffer.from(r.body.data[0].b64_json, 'base64');
  t.deepEqual(pngSize(png), { width: 64, height: 128 });
  t.regex(readPNGText(png).parameters, /Steps: 3, Sampler: dpmpp-2m, Seed: 7/);
  t.is(fake.generated, 2);

  const u = await postJSON(`${url}/v1/images/generations`, { prompt: 'x', response_format: 'url', steps: 1 });
  t.is(u.status, 200);
  t.true(u.body.data[0].url.startsWith(url));
  const img = await fetch(u.body.data[0].url);
  t.is(img.headers.get('content-type'), 'image/png');
  t.deepEqual(pngSize(Buffer.from(await img.arrayBuffer())), { width: 64, height: 64 });
});

test('bad input is a 400 with the API message, never a 500', async (t) => {
  const { service, url } = await startLocal(new Map([['tiny', new FakePipeline()]]));
  t.teardown(() => service.close(0));
  const cases: [unknown, string][] = [
    [{ prompt: 'x', size: '700x512' }, 'Expected a multiple of 8 for width but received 700'],
    [{ prompt: 'x', size: 'big' }, `Expected a size 'WxH' such as '512x512' for size but received "big"`],
    [
      { prompt: 'x', sampler: 'fast' },
      'Expected one of euler, euler-a, heun, dpmpp-2m, dpmpp-2m-sde, ddim, pndm, lms, unipc, lcm for sampler but received "fast"',
    ],
    [{ prompt: 'x', steps: 0 }, 'Expected an integer in [1, 1000] for steps but received 0'],
    [
      { prompt: 'x', guidance_method: 'cfg++', guidance_scale: 3 },
      'Expected a finite number in [0, 1] for guidance.scale but received 3',
    ],
    [{ prompt: 'x', n: 9 }, 'Expected an integer in [1, 4] for n but received 9'],
    [{ prompt: 'x', model: 'sdxl' }, 'Expected one of tiny for model but received "sdxl"'],
    [{ prompt: 'x', response_format: 'png' }, 'Expected one of b64_json, url for response_format but received "png"'],
    [{ prompt: 42 }, 'Expected a string for prompt but received 42'],
    [{ prompt: 'x', seed: -1 }, 'Expected an integer in [0, 2^64) for seed but received -1'],
    [[1, 2], 'Expected a JSON object for request body but received an array of length 2'],
  ];
  for (const [body, message] of cases) {
    for (const path of ['/v1/images/generations', '/jobs']) {
      const r = await postJSON(`${url}${path}`, body);
      t.is(r.status, 400, `${path} ${JSON.stringify(body)}`);
      t.deepEqual(r.body, { error: { code: 'ERR_INVALID_ARGUMENT', message } });
    }
  }
  const unknownField = await postJSON(`${url}/jobs`, { prompt: 'x', stpes: 3 });
  t.is(unknownField.status, 400);
  t.regex(unknownField.body.error.message, /for field name but received "stpes"/);
  const malformed = await fetch(`${url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"prompt": ',
  });
  t.is(malformed.status, 400);
  t.is(((await malformed.json()) as any).error.code, 'ERR_INVALID_ARGUMENT');
  const wrongType = await fetch(`${url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'hello',
  });
  t.is(wrongType.status, 400);
  t.deepEqual(await wrongType.json(), {
    error: { code: 'ERR_INVALID_ARGUMENT', message: 'Expected a JSON object for request body but received "hello"' },
  });
  const octets = await fetch(`${url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: 'hello',
  });
  t.is(octets.status, 415);
  t.is(((await octets.json()) as any).error.code, 'ERR_INVALID_ARGUMENT');
  const huge = await postJSON(`${url}/jobs`, { prompt: 'x'.repeat(2 << 20) });
  t.is(huge.status, 413);
  t.is((await getJSON(`${url}/jobs/does-not-exist`)).status, 404);
  t.is((await getJSON(`${url}/jobs/does-not-exist/events`)).status, 404);
  t.is((await fetch(`${url}/jobs/does-not-exist`, { method: 'DELETE' })).status, 404);
  t.is((await getJSON(`${url}/jobs/does-not-exist/images/0`)).body.error.code, 'ERR_IMAGE_NOT_FOUND');
});

test('job API: progress as server-sent events with ETA and preview, then the image', async (t) => {
  const { service, url } = await startLocal(new Map([['tiny', new FakePipeline({ stepMs: 5 })]]));
  t.teardown(() => service.close(0));
  const r = await postJSON(`${url}/jobs`, { prompt: 'a boat', steps: 5, seed: 3, preview: true });
  t.is(r.status, 202);
  t.is(r.headers.get('location'), `/jobs/${r.body.id}`);
  const events = await readEvents(`${url}${r.body.links.events}`);
  const progress = events.filter((e) => e.event === 'progress').map((e) => e.data);
  // the job may start before the stream is open: the steps seen rise to 5 without gaps
  const steps = progress.map((p) => p.step);
  t.true(steps.length >= 2);
  t.deepEqual(
    steps,
    Array.from({ length: steps.length }, (_, i) => 6 - steps.length + i),
  );
  t.is(progress.at(-1).fraction, 1);
  t.true(progress.every((p) => typeof p.etaMs === 'number' && p.steps === 5));
  t.regex(progress.at(-1).preview, /^data:image\/png;base64,/);
  const done = events.at(-1)!;
  t.is(done.event, 'done');
  t.is(done.data.status, 'succeeded');
  t.is(done.data.results[0].seed, '3');
  const job = await getJSON(`${url}/jobs/${r.body.id}`);
  t.is(job.body.status, 'succeeded');
  t.is(job.body.progress.preview, undefined);
  const img = await fetch(`${url}${job.body.image_urls[0]}`);
  t.is(img.status, 200);
  // subscribing after the end gets the final state at once
  const late = await readEvents(`${url}/jobs/${r.body.id}/events`);
  t.deepEqual(
    late.map((e) => e.event),
    ['done'],
  );
});

test.serial('DELETE /jobs/:id cancels a running job within a step, and a queued one at once', async (t) => {
  const fake = new FakePipeline({ stepMs: 100 });
  const { service, url } = await startLocal(new Map([['tiny', fake]]));
  t.teardown(() => service.close(0));
  const a = (await postJSON(`${url}/jobs`, { prompt: 'a', steps: 200 })).body;
  const b = (await postJSON(`${url}/jobs`, { prompt: 'b', steps: 200 })).body;
  await until(async () => (await getJSON(`${url}/jobs/${a.id}`)).body.progress?.step >= 2);
  const queued = await fetch(`${url}/jobs/${b.id}`, { method: 'DELETE' });
  t.is(((await queued.json()) as any).status, 'cancelled');
  const stepsBefore = fake.stepsRun;
  const running = (await (await fetch(`${url}/jobs/${a.id}`, { method: 'DELETE' })).json()) as any;
  t.is(running.status, 'cancelled');
  t.is(running.error.code, 'ERR_ABORTED');
  // the step in flight completes, no further one starts
  t.true(fake.stepsRun - stepsBefore <= 1, `${fake.stepsRun - stepsBefore} steps after the cancel`);
  t.is(fake.aborted, 1);
});

test.serial('a client that disconnects aborts its job within one step', async (t) => {
  const fake = new FakePipeline({ stepMs: 100 });
  const { service, url } = await startLocal(new Map([['tiny', fake]]));
  t.teardown(() => service.close(0));
  const controller = new AbortController();
  const pending = postJSON(
    `${url}/v1/images/generations`,
    { prompt: 'x', steps: 500 },
    { signal: controller.signal },
  ).catch((e) => e);
  const stats = async () => (await service.backend.stats())[0];
  await until(async () => (await stats()).running === 1);
  await new Promise((r) => setTimeout(r, 100));
  const stepsBefore = fake.stepsRun;
  controller.abort();
  t.is((await pending).name, 'AbortError');
  await until(async () => (await stats()).cancelled === 1, 2000, 2);
  t.true(fake.stepsRun - stepsBefore <= 1, `${fake.stepsRun - stepsBefore} steps after the disconnect`);
  t.is(fake.aborted, 1);
  t.is(fake.generated, 0);
});

test('a full queue answers 429 with Retry-After', async (t) => {
  const { service, url } = await startLocal(new Map([['tiny', new FakePipeline({ stepMs: 20 })]]), {
    concurrency: 1,
    limit: 2,
  });
  t.teardown(() => service.close(0));
  const accepted = [];
  for (let i = 0; i < 3; i++) accepted.push(await postJSON(`${url}/jobs`, { prompt: `${i}`, steps: 100 }));
  t.deepEqual(
    accepted.map((r) => r.status),
    [202, 202, 202],
  );
  const rejected = await postJSON(`${url}/jobs`, { prompt: 'one too many', steps: 2 });
  t.is(rejected.status, 429);
  t.is(rejected.body.error.code, 'ERR_QUEUE_FULL');
  t.true(Number(rejected.headers.get('retry-after')) >= 1);
  const sync = await postJSON(`${url}/v1/images/generations`, { prompt: 'x', steps: 2 });
  t.is(sync.status, 429);
  const metrics = (await getJSON(`${url}/metrics`)).body;
  t.regex(metrics, /nd_queue_waiting\{model="tiny"\} 2/);
  t.regex(metrics, /nd_queue_running\{model="tiny"\} 1/);
});

test('per-request and per-service timeouts fail the job with ERR_TIMEOUT (504)', async (t) => {
  const { service, url } = await startLocal(new Map([['tiny', new FakePipeline({ stepMs: 20 })]]), { timeoutMs: 300 });
  t.teardown(() => service.close(0));
  const own = await postJSON(`${url}/v1/images/generations`, { prompt: 'x', steps: 100, timeout_ms: 60 });
  t.is(own.status, 504);
  t.is(own.body.error.code, 'ERR_TIMEOUT');
  t.regex(own.body.error.message, /60 ms/);
  const svc = await postJSON(`${url}/jobs`, { prompt: 'x', steps: 100 });
  const done = (await readEvents(`${url}/jobs/${svc.body.id}/events`)).at(-1)!;
  t.is(done.data.status, 'failed');
  t.is(done.data.error.code, 'ERR_TIMEOUT');
});

test('graceful shutdown finishes running jobs within the grace period and cancels the rest', async (t) => {
  const fake = new FakePipeline({ stepMs: 20 });
  const { service, url } = await startLocal(new Map([['tiny', fake]]), { concurrency: 1 });
  const { service: other, url: otherUrl } = await startLocal(new Map([['tiny', new FakePipeline({ stepMs: 20 })]]));
  const short = (await postJSON(`${url}/jobs`, { prompt: 'short', steps: 25 })).body;
  const queued = (await postJSON(`${url}/jobs`, { prompt: 'queued', steps: 5 })).body;
  const events = readEvents(`${url}/jobs/${short.id}/events`);
  const inFlight = postJSON(`${otherUrl}/v1/images/generations`, { prompt: 'in flight', steps: 25 });
  await until(async () => (await other.backend.stats())[0].running === 1);
  await Promise.all([service.close(5000), other.close(5000)]);
  // a synchronous request in flight during shutdown still gets its image
  const answered = await inFlight;
  t.is(answered.status, 200);
  t.truthy(answered.body.data[0].b64_json);
  t.is((await service.backend.get(short.id))?.status, 'succeeded');
  t.is((await service.backend.get(queued.id))?.status, 'cancelled');
  t.is((await events).at(-1)?.data.status, 'succeeded');
  await t.throwsAsync(fetch(`${url}/health`));

  const slow = await startLocal(new Map([['tiny', new FakePipeline({ stepMs: 20 })]]));
  const long = (await postJSON(`${slow.url}/jobs`, { prompt: 'long', steps: 1000 })).body;
  await until(async () => (await slow.service.backend.get(long.id))?.status === 'running');
  const t0 = Date.now();
  await slow.service.close(100);
  t.true(Date.now() - t0 < 1000);
  const final = await slow.service.backend.get(long.id);
  t.is(final?.status, 'cancelled');
  t.regex(final?.error?.message ?? '', /shutting down/);
});
