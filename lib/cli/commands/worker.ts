// `native-diffusion worker --queue redis://… --model name=path`: runs jobs that `serve --queue` enqueues.
import type { Command } from 'commander';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  program
    .command('worker')
    .description('process image jobs from a Redis queue (BullMQ) filled by `native-diffusion serve --queue`')
    .requiredOption('--queue <redis-url>', 'the Redis to take jobs from, e.g. redis://127.0.0.1:6379')
    .option('-m, --model <name=path>', 'a model to serve (repeatable)', collect, [])
    .option('--concurrency <n>', 'jobs run at once per model', '1')
    .option('--timeout <ms>', 'per-job time limit in ms (0 = none)', '600000')
    .option(
      '--grace <ms>',
      'on SIGTERM/SIGINT, let running jobs finish this long, then hand them back to the queue',
      '10000',
    )
    .option('--lock-ms <ms>', "job lock duration: a dead worker's job is retried after about this long", '30000')
    .option('--stalled-ms <ms>', 'how often to look for jobs of dead workers', '15000')
    .option('--threads <n>', 'native threads per model (0 = all cores)')
    .option('--config <json>', 'config overrides for the models, as for inspect/generate')
    .option('--prefix <prefix>', 'Redis key prefix', 'nd')
    .action(async (flags) => {
      // loaded here so that other commands never load fastify
      const { runWorker } = await import('../../server/main.js');
      await runWorker(flags);
    });
}
