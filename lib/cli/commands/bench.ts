// `native-diffusion bench <suite> [options]`: the benchmark suites (lib/cli/bench.ts dispatches;
// suites live in lib/cli/bench/). Options after the suite name go to the suite unparsed.
import type { Command } from 'commander';
import { main as runBench } from '../bench.js';

export function register(program: Command): void {
  program
    .command('bench')
    .description(
      'run a benchmark suite (kernels: GEMM / conv / attention vs the measured FMA peak; sd15: whole-model U-Net / VAE / txt2img)',
    )
    .argument('[suite]', 'suite name, e.g. kernels')
    .argument('[options...]', 'suite options, e.g. --json --threads 2 (see bench <suite> --help)')
    .allowUnknownOption(true)
    .helpOption(false)
    .action(async (suite: string | undefined, options: string[]) => {
      await runBench(suite ? [suite, ...options] : []);
    });
}
