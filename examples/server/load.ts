// Load test for the service (loopback only, bounded in requests and time):
//
//   node --import tsx examples/server/load.ts [--model name=path] [--config JSON] [--jobs 100]
//        [--warm 10] [--connections 4] [--concurrency 1] [--size 64x64] [--steps 2] [--max-seconds 900]
//
// Starts `native-diffusion serve` as a child process on 127.0.0.1 (port 0), then
//  1. runs `--warm` jobs through POST /v1/images/generations (autocannon, `--connections` at once)
//     and reads the server's RSS and heap from /metrics;
//  2. runs the remaining jobs up to `--jobs` the same way while a second autocannon hits /health at
//     50 requests/s; reports jobs/minute, request latency (queueing + generation), the queueing
//     delay per job (from GET /jobs/:id), /health latency and the RSS/heap after all jobs vs after
//     the warm-up (flat = no leak);
//  3. stops the server with SIGTERM (graceful shutdown) and checks that it exits.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: `tiny=${join(root, 'test', 'fixtures', 'models', 'tiny-sd1.safetensors')}` },
    config: { type: 'string', default: '{"nativeSize":256,"textEncoder":{"heads":4}}' },
    jobs: { type: 'string', default: '100' },
    warm: { type: 'string', default: '10' },
    connections: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    size: { type: 'string', default: '64x64' },
    steps: { type: 'string', default: '2' },
    sampler: { type: 'string', default: 'euler' },
    'max-seconds': { type: 'string', default: '900' },
  },
});
const jobs = Number(args.jobs);
const warm = Number(args.warm);
const connections = Number(args.connections);
if (!(jobs > warm && warm >= 1 && jobs <= 1000 && connections >= 1 && connections <= 64)) {
  throw new Error('Expected 1 <= --warm < --jobs <= 1000 and 1 <= --connections <= 64');
}
const deadline = Date.now() + Number(args['max-seconds']) * 1000;

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'lib', 'cli', 'main.ts'),
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--model',
      args.model as string,
      '--config',
      args.config as string,
      '--threads',
      args.threads as string,
      '--concurrency',
      args.concurrency as string,
      '--queue-limit',
      String(connections + 1),
      '--keep',
      '50',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function memory(url: string): Promise<{ rss: number; heap: number }> {
  await new Promise((r) => setTimeout(r, 1000)); // let the last responses settle
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rss: read('process_resident_memory_bytes'), heap: read('nodejs_heap_used_bytes') };
}

type Result = autocannon.Result;

function run(opts: autocannon.Options): { done: Promise<Result>; stop: () => void } {
  let instance: autocannon.Instance;
  const done = new Promise<Result>((resolve, reject) => {
    instance = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
  return { done, stop: () => instance.stop() };
}

function generations(url: string, amount: number, seedBase: number): ReturnType<typeof run> {
  const [width, height] = (args.size as string).split('x').map(Number);
  let seed = seedBase;
  return run({
    url: `${url}/v1/images/generations`,
    method: 'POST',
    connections,
    amount,
    timeout: 600,
    headers: { 'content-type': 'application/json' },
    // a distinct seed per request
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({
            prompt: 'a red apple on a table',
            size: `${width}x${height}`,
            steps: Number(args.steps),
            sampler: args.sampler,
            seed: seed++,
            response_format: 'url',
          }),
        }),
      },
    ],
  });
}

const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

const { child, url } = await startServer();
const guard = setTimeout(() => {
  console.error('load: --max-seconds reached, stopping');
  child.kill('SIGKILL');
  process.exit(2);
}, deadline - Date.now());
try {
  console.log(
    `server ${url}; ${jobs} jobs (${warm} warm-up), ${connections} connections, ${args.size}, ${args.steps} steps, ${args.sampler}`,
  );
  // /health with nothing running: the machine's own scheduling noise, to compare with the loaded figure
  const idle = await run({ url: `${url}/health`, connections: 1, overallRate: 50, duration: 5, timeout: 10 }).done;
  const first = await generations(url, warm, 1).done;
  if (first.non2xx || first.errors) throw new Error(`warm-up: ${first.non2xx} non-2xx, ${first.errors} errors`);
  const afterWarm = await memory(url);

  const health = run({ url: `${url}/health`, connections: 1, overallRate: 50, duration: 3600, timeout: 10 });
  const t0 = Date.now();
  const main = await generations(url, jobs - warm, 1000).done;
  const seconds = (Date.now() - t0) / 1000;
  health.stop();
  const h = await health.done;
  const afterAll = await memory(url);
  const stats = await (await fetch(`${url}/metrics`)).text();
  const queued = /nd_job_run_ms_mean\{model="[^"]+"\} (\d+)/.exec(stats)?.[1];
  const loopP99 = /nd_event_loop_delay_ms\{quantile="0.99"\} ([\d.]+)/.exec(stats)?.[1];

  console.log(
    `generation: ${main.requests.total} jobs in ${seconds.toFixed(1)} s = ${((main.requests.total / seconds) * 60).toFixed(1)} jobs/minute; non-2xx ${main.non2xx}, errors ${main.errors}`,
  );
  console.log(
    `request latency (queueing + generation): p50 ${main.latency.p50} ms, p99 ${main.latency.p99} ms; mean run time per job ${queued} ms`,
  );
  console.log(
    `  → mean queueing delay ≈ ${Math.max(0, main.latency.average - Number(queued)).toFixed(0)} ms with ${connections} clients on concurrency ${args.concurrency}`,
  );
  console.log(
    `/health during generation: ${h.requests.total} requests, p50 ${h.latency.p50} ms, p99 ${h.latency.p99} ms, max ${h.latency.max} ms, non-2xx ${h.non2xx}`,
  );
  console.log(
    `/health idle (before any job): p50 ${idle.latency.p50} ms, p99 ${idle.latency.p99} ms, max ${idle.latency.max} ms`,
  );
  console.log(`server event-loop delay p99 over the whole run: ${loopP99} ms`);
  console.log(`server memory after ${warm} jobs: RSS ${mb(afterWarm.rss)}, heap ${mb(afterWarm.heap)}`);
  console.log(
    `server memory after ${jobs} jobs: RSS ${mb(afterAll.rss)}, heap ${mb(afterAll.heap)} (RSS ${afterAll.rss >= afterWarm.rss ? '+' : ''}${mb(afterAll.rss - afterWarm.rss)})`,
  );
} finally {
  clearTimeout(guard);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  console.log(`server stopped (exit code ${child.exitCode})`);
}
