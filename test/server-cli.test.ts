// `native-diffusion serve` and `native-diffusion worker` as processes, with the tiny SD1 model:
// serve alone, then serve --queue + worker --queue on a Redis of the test's own; SIGTERM stops each.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { REDIS_SERVER, spawnTs, startRedis, stop, waitForLine } from './helpers/processes.js';
import { getJSON, postJSON, until } from './helpers/server.js';

const MAIN = join(repoRoot, 'lib', 'cli', 'main.ts');
const MODEL = `tiny=${fixture('models/tiny-sd1.safetensors')}`;
const CONFIG = '{"nativeSize":256,"textEncoder":{"heads":4}}';

test('serve: loads the model, answers, generates and exits 0 on SIGTERM', async (t) => {
  const child = spawnTs(MAIN, ['serve', '--port', '0', '--model', MODEL, '--config', CONFIG, '--threads', '1']);
  t.teardown(() => stop(child, 'SIGKILL'));
  const url = (await waitForLine(child, /^listening on /)).slice('listening on '.length).trim();
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.is((await getJSON(`${url}/v1/models`)).body.data[0].id, 'tiny');
  const r = await postJSON(`${url}/v1/images/generations`, {
    prompt: 'a cat',
    size: '64x64',
    steps: 1,
    sampler: 'euler',
  });
  t.is(r.status, 200);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});

const DIST_MAIN = join(repoRoot, 'dist', 'cli', 'main.js');

// The service is compiled with the package: the installed `native-diffusion serve` runs plain node.
test('serve from dist/ (plain node, no tsx): answers and generates', async (t) => {
  if (!existsSync(DIST_MAIN)) return t.fail(`${DIST_MAIN} is missing: run npm run build:ts`);
  const child = spawn(
    process.execPath,
    [DIST_MAIN, 'serve', '--port', '0', '--model', MODEL, '--config', CONFIG, '--threads', '1'],
    { stdio: ['ignore', 'pipe', process.env.ND_TEST_VERBOSE ? 'inherit' : 'ignore'] },
  );
  t.teardown(() => stop(child, 'SIGKILL'));
  const url = (await waitForLine(child, /^listening on /)).slice('listening on '.length).trim();
  const page = await fetch(`${url}/`);
  t.is(page.status, 200);
  const r = await postJSON(`${url}/v1/images/generations`, { prompt: 'a cat', size: '64x64', steps: 1 });
  t.is(r.status, 200);
  t.truthy(r.body.data[0].b64_json);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});

// bullmq and ioredis are optional peers: a package tree without them serves, and --queue says what to install.
test('without bullmq/ioredis installed: serve works, serve --queue and worker say what to install', async (t) => {
  if (!existsSync(DIST_MAIN)) return t.fail(`${DIST_MAIN} is missing: run npm run build:ts`);
  const root = mkdtempSync(join(tmpdir(), 'nd-no-redis-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(join(repoRoot, 'dist'), join(root, 'dist'), { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(root, 'package.json'));
  for (const dir of ['build', 'models']) symlinkSync(join(repoRoot, dir), join(root, dir));
  mkdirSync(join(root, 'node_modules'));
  for (const name of readdirSync(join(repoRoot, 'node_modules'))) {
    if (name !== 'bullmq' && name !== 'ioredis')
      symlinkSync(join(repoRoot, 'node_modules', name), join(root, 'node_modules', name));
  }
  const main = join(root, 'dist', 'cli', 'main.js');
  for (const args of [
    ['serve', '--queue', 'redis://127.0.0.1:1'],
    ['worker', '--queue', 'redis://127.0.0.1:1'],
  ]) {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    t.is(await new Promise<number | null>((resolve) => child.once('exit', resolve)), 1);
    t.regex(err, /needs the optional packages bullmq and ioredis .*: npm install bullmq ioredis \(ERR_UNSUPPORTED\)/);
  }
  const child = spawn(process.execPath, [main, 'serve', '--port', '0', '--threads', '1'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.teardown(() => stop(child, 'SIGKILL'));
  const url = (await waitForLine(child, /^listening on /)).slice('listening on '.length).trim();
  t.is((await postJSON(`${url}/v1/images/generations`, { prompt: 'a cat', steps: 1 })).status, 200);
});

test('serve: a bad --model flag is a clear error', async (t) => {
  const child = spawnTs(MAIN, ['serve', '--port', '0', '--model', 'bad name=x.safetensors'], { stderr: true });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 1);
  t.regex(err, /Expected name=path .* for --model but received "bad name=x.safetensors"/);
});

if (!REDIS_SERVER) {
  test.skip('serve --queue + worker (skipped: redis-server is not installed; apt-get install redis-server)', () => {});
} else {
  test('serve --queue and worker --queue: the real model through Redis', async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const worker = spawnTs(MAIN, [
      'worker',
      '--queue',
      redis.url,
      '--model',
      MODEL,
      '--config',
      CONFIG,
      '--threads',
      '1',
      '--grace',
      '1000',
    ]);
    t.teardown(() => stop(worker, 'SIGKILL'));
    const server = spawnTs(MAIN, ['serve', '--port', '0', '--queue', redis.url]);
    t.teardown(() => stop(server, 'SIGKILL'));
    await waitForLine(worker, /^worker .* ready/);
    const url = (await waitForLine(server, /^listening on /)).slice('listening on '.length).trim();
    await until(async () => (await getJSON(`${url}/v1/models`)).body.data?.length === 1, 10_000, 100);
    const r = await postJSON(`${url}/v1/images/generations`, {
      prompt: 'a cat',
      size: '64x64',
      steps: 2,
      sampler: 'euler',
      seed: 4,
    });
    t.is(r.status, 200, JSON.stringify(r.body));
    t.is(r.body.data[0].seed, '4');
    t.is(Buffer.from(r.body.data[0].b64_json, 'base64').readUInt32BE(16), 64);
    const job = (await getJSON(`${url}/jobs/${r.body.job_id}`)).body;
    t.regex(job.worker, /:\d+$/);
    for (const child of [worker, server]) {
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      t.is(await exited, 0);
    }
  });
}
