// `native-diffusion inspect <path> [--json]`: family, format, native size, prediction type, dtypes,
// parameter counts per component and the detected config of a checkpoint.
import type { Command } from 'commander';
import { formatInspect, inspectModel } from '../../loading/inspect.js';
import { jsonObjectFlag, predictionFlag } from '../flags.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show what a checkpoint is (.safetensors file or diffusers folder)')
    .argument('<path>', 'a single-file .safetensors checkpoint or a diffusers folder')
    .option('--json', 'print the full report as JSON')
    .option('--prediction <type>', 'override the prediction type (epsilon | v_prediction)')
    .option(
      '--config <json>',
      'JSON partial config overriding what is detected, e.g. \'{"unet":{"numHeads":[2,4,8,8]}}\'',
    )
    .action((path: string, opts: { json?: boolean; prediction?: string; config?: string }) => {
      const report = inspectModel(path, {
        prediction: predictionFlag(opts.prediction),
        config: jsonObjectFlag(opts.config, '--config') as never,
      });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatInspect(report)}\n`);
    });
}
