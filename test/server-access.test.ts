// Who may call the service and how much it takes on, in process with the fake pipeline: bearer auth
// (OpenAI-style 401, ?api_key= only for GET, /health and the page open), CORS only for the named origin,
// --max-pixels and --max-memory answering 413 with the numbers, and a job that fits alone but not
// beside the running one waiting for the memory.
import test from 'ava';
import { FakePipeline } from './helpers/fake-pipeline.js';
import { getJSON, postJSON, startLocal, until } from './helpers/server.js';

const KEY = 'access-test-key';

test('bearer auth: 401 OpenAI body, constant-time match, ?api_key= for GET only, /health and page open', async (t) => {
  const { service, url } = await startLocal(new Map([['tiny', new FakePipeline()]]), {}, { apiKey: KEY });
  t.teardown(() => service.close(0));
  const missing = await getJSON(`${url}/v1/models`);
  t.is(missing.status, 401);
  t.is(missing.headers.get('www-authenticate'), 'Bearer');
  t.deepEqual(Object.keys(missing.body.error).sort(), ['code', 'message', 'param', 'type']);
  t.is(missing.body.error.type, 'invalid_request_error');
  t.is((await getJSON(`${url}/v1/models`, { headers: { authorization: 'Bearer x' } })).status, 401);
  t.is((await getJSON(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).status, 200);
  t.is((await getJSON(`${url}/v1/models?api_key=${KEY}`)).status, 200);
  t.is((await postJSON(`${url}/jobs?api_key=${KEY}`, { prompt: 'x' })).status, 401); // not for POST
  t.is((await getJSON(`${url}/health`)).status, 200);
  t.is((await getJSON(`${url}/`)).status, 200);
  t.is((await getJSON(`${url}/app.js`)).status, 200);
  t.is((await getJSON(`${url}/metrics`)).status, 401);
});

test('CORS: no headers by default; --cors ORIGIN answers preflights for that origin', async (t) => {
  const plain = await startLocal(new Map([['tiny', new FakePipeline()]]));
  t.teardown(() => plain.service.close(0));
  const r = await fetch(`${plain.url}/v1/models`, { headers: { origin: 'https://evil.example' } });
  t.is(r.headers.get('access-control-allow-origin'), null);
  const cors = await startLocal(new Map([['tiny', new FakePipeline()]]), {}, { cors: 'https://app.example' });
  t.teardown(() => cors.service.close(0));
  const pre = await fetch(`${cors.url}/jobs`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  });
  t.is(pre.status, 204);
  t.is(pre.headers.get('access-control-allow-origin'), 'https://app.example');
  t.regex(pre.headers.get('access-control-allow-headers') ?? '', /authorization/);
});

test('--max-pixels and --max-memory: 413 with the numbers; a job that fits alone waits for memory', async (t) => {
  // 1 MiB weights + 1 KiB per pixel: 64² = 4 MiB, 128² = 16 MiB, 256² = 64 MiB
  const fake = new FakePipeline({ stepMs: 50, samplers: ['euler', 'ddim'] });
  const { service, url } = await startLocal(new Map([['tiny', fake]]), {
    concurrency: 2,
    maxPixels: 128 * 128,
    maxMemoryBytes: 20 * 2 ** 20,
  });
  t.teardown(() => service.close(0));
  const tooWide = await postJSON(`${url}/jobs`, { prompt: 'x', size: '256x128' });
  t.is(tooWide.status, 413);
  t.is(tooWide.body.error.code, 'ERR_TOO_LARGE');
  t.regex(tooWide.body.error.message, /256x128 has 32768 pixels; this service takes at most 16384/);
  const sampler = await postJSON(`${url}/jobs`, { prompt: 'x', sampler: 'heun' });
  t.is(sampler.status, 400);
  t.regex(sampler.body.error.message, /Expected one of euler, ddim \(the samplers this model supports\)/);
  // 128² (16 MiB) fits alone in 20 MiB, not beside another one: the second waits although concurrency is 2
  const a = await postJSON(`${url}/jobs`, { prompt: 'a', size: '128x128', steps: 6 });
  const b = await postJSON(`${url}/jobs`, { prompt: 'b', size: '128x128', steps: 2 });
  t.is(a.status, 202);
  t.is(b.status, 202);
  await until(async () => (await getJSON(`${url}/jobs/${a.body.id}`)).body.status === 'running', 5000);
  t.is((await getJSON(`${url}/jobs/${b.body.id}`)).body.status, 'queued');
  await until(async () => (await getJSON(`${url}/jobs/${b.body.id}`)).body.status === 'succeeded', 10_000);
  const first = (await getJSON(`${url}/jobs/${a.body.id}`)).body;
  const second = (await getJSON(`${url}/jobs/${b.body.id}`)).body;
  t.true(second.startedAt >= first.finishedAt, 'b started only after a freed its memory');
});

test('--max-memory below the weights plus one job: 413 naming the budget', async (t) => {
  const { service, url } = await startLocal(new Map([['tiny', new FakePipeline()]]), { maxMemoryBytes: 8 * 2 ** 20 });
  t.teardown(() => service.close(0));
  const r = await postJSON(`${url}/v1/images/generations`, { prompt: 'x', size: '128x128' });
  t.is(r.status, 413);
  t.regex(
    r.body.error.message,
    /needs about 16 MiB for 128x128 on top of 1 MiB of loaded weights; the memory budget is 8 MiB/,
  );
  t.is((await postJSON(`${url}/v1/images/generations`, { prompt: 'x', size: '64x64' })).status, 200);
  const metrics = (await getJSON(`${url}/metrics`)).body as string;
  t.regex(metrics, /nd_memory_budget_bytes 8388608/);
  t.regex(metrics, /nd_memory_weights_bytes 1048576/);
  t.regex(metrics, /nd_memory_reserved_bytes 0/);
});
