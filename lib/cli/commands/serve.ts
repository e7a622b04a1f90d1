// `native-diffusion serve --model name=path …`: the HTTP image service (lib/server).
import type { Command } from 'commander';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'run the HTTP image service: OpenAI-compatible /v1/images/generations, a job API with live progress, a web page',
    )
    .option(
      '-m, --model <name=path>',
      'a model to keep loaded (repeatable); requests name it with "model"',
      collect,
      [],
    )
    .option('--host <host>', 'address to listen on (loopback by default; elsewhere, set an API key)', '127.0.0.1')
    .option(
      '--api-key <key>',
      'require "Authorization: Bearer <key>" on every endpoint but /health and the page (or set NATIVE_DIFFUSION_API_KEY)',
    )
    .option('--cors <origin>', 'let pages from this origin call the API from a browser (CORS is off by default)')
    .option(
      '--max-memory <bytes>',
      'memory budget (e.g. 8G): weights plus running jobs must fit, larger requests get 413 (default: 80% of RAM)',
    )
    .option('--max-pixels <n>', 'largest width × height per image for every model (413 beyond; default: no cap)')
    .option('-p, --port <port>', 'port (0 = any free port)', '8080')
    .option('--concurrency <n>', 'jobs run at once per model', '1')
    .option('--queue-limit <n>', 'jobs waiting per model before requests get 429', '16')
    .option(
      '--timeout <ms>',
      'per-job time limit in ms (0 = none); requests may ask for less with timeout_ms',
      '600000',
    )
    .option('--grace <ms>', 'on SIGTERM/SIGINT, let running jobs finish this long before cancelling them', '10000')
    .option('--keep <n>', 'finished jobs kept for GET /jobs/:id', '200')
    .option('--threads <n>', 'native threads per model (0 = all cores)')
    .option('--config <json>', 'config overrides for the models, as for inspect/generate')
    .option(
      '--queue <redis-url>',
      'enqueue on Redis (BullMQ) for `native-diffusion worker` processes instead of running jobs here',
    )
    .option('--prefix <prefix>', 'Redis key prefix', 'nd')
    .option('--log', 'log every request')
    .action(async (flags) => {
      // loaded here so that other commands never load fastify
      const { runServe } = await import('../../server/main.js');
      await runServe(flags);
    });
}
