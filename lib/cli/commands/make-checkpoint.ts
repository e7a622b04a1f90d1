// `native-diffusion make-checkpoint --family sd15|sd21 --dtype f16|f32 -o file.safetensors [--seed N] [--width-scale S]`:
// a random-weight full-size checkpoint for benchmarks (see lib/cli/make-checkpoint.ts).
import type { Command } from 'commander';
import { invalid } from '../../errors.js';
import { type CheckpointFamily, writeCheckpoint } from '../make-checkpoint.js';

export function register(program: Command): void {
  program
    .command('make-checkpoint')
    .description('write a random-weight SD 1.5 / SD 2.1 checkpoint (single-file LDM layout) for benchmarks')
    .requiredOption('--family <family>', 'sd15 or sd21')
    .option('--dtype <dtype>', 'f16 or f32', 'f16')
    .requiredOption('-o, --output <file>', 'output .safetensors file')
    .option('--seed <n>', 'random seed', '0')
    .option('--width-scale <s>', 'narrow every width by this factor (0 < s <= 1) for small test models', '1')
    .action((opts: { family: string; dtype: string; output: string; seed: string; widthScale: string }) => {
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
        invalid('an integer in [0, 2^32)', '--seed', opts.seed);
      const widthScale = Number(opts.widthScale);
      const tty = process.stderr.isTTY;
      let last = -1;
      const started = Date.now();
      const plan = writeCheckpoint(
        opts.output,
        { family: opts.family as CheckpointFamily, dtype: opts.dtype as 'f16' | 'f32', seed, widthScale },
        (done, total) => {
          const pct = Math.floor((100 * done) / total);
          if (tty && pct !== last)
            process.stderr.write(`\r${opts.output}: ${pct}% of ${(total / 2 ** 30).toFixed(2)} GiB`);
          last = pct;
        },
      );
      if (tty) process.stderr.write('\n');
      process.stdout.write(
        `wrote ${opts.output}: ${plan.tensors.length} tensors, ${(plan.bytes / 2 ** 20).toFixed(1)} MiB, ${plan.config.family} ${plan.config.dtype}, in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    });
}
