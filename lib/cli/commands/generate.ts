// `native-diffusion [generate] "prompt" [-m model] [...] -o out.png`: the main job from the shell. Without -m it
// runs the embedded default model (models/default, a small layered pixel-space model, 64 px native).
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { DiffusionError } from '../../errors.js';
import { loadPipeline } from '../../load-pipeline.js';
import { type GenerateOptions, GUIDANCE_METHODS } from '../../options.js';
import { checkOutputPath, intFlag, jsonObjectFlag, predictionFlag, vaeTilingFlag } from '../flags.js';

interface GenerateFlags {
  model?: string;
  output: string;
  width?: string;
  height?: string;
  size?: string;
  steps?: string;
  sampler?: string;
  schedule?: string;
  cfg?: string;
  guidance?: string;
  guidanceSchedule?: string;
  rescale?: string;
  attentionScaling?: string;
  seed?: string;
  negative?: string;
  eta?: string;
  clipSkip?: string;
  threads?: string;
  prediction?: string;
  config?: string;
  vaeTiling?: string;
  quiet?: boolean;
}

/** Numbers are parsed strictly so "12px" is an error, not 12. */
function num(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) {
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      `Expected a number for ${flag} but received ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function parseSize(size: string | undefined): { width?: number; height?: number } {
  if (size === undefined) return {};
  const m = /^(\d+)(?:x(\d+))?$/.exec(size);
  if (!m)
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      `Expected WxH or N for --size but received ${JSON.stringify(size)}`,
    );
  return { width: Number(m[1]), height: Number(m[2] ?? m[1]) };
}

/** The library names its options (width); the message names the flag the user typed (--size). */
function flagNames(err: unknown, f: GenerateFlags): unknown {
  if (!(err instanceof DiffusionError) || f.size === undefined) return err;
  const m = / for (width|height) but received /.exec(err.message);
  if (!m || (m[1] === 'width' ? f.width : f.height) !== undefined) return err;
  err.message = err.message.replace(m[0], ` for ${m[1]} (from --size ${f.size}) but received `);
  return err;
}

export function toGenerateOptions(prompt: string, f: GenerateFlags): GenerateOptions {
  const size = parseSize(f.size);
  const seed = f.seed === undefined ? undefined : /^\d+$/.test(f.seed) ? BigInt(f.seed) : num(f.seed, '--seed');
  return {
    prompt,
    negativePrompt: f.negative,
    width: num(f.width, '--width') ?? size.width,
    height: num(f.height, '--height') ?? size.height,
    steps: num(f.steps, '--steps'),
    sampler: f.sampler as GenerateOptions['sampler'],
    schedule: f.schedule as GenerateOptions['schedule'],
    seed,
    eta: num(f.eta, '--eta'),
    clipSkip: num(f.clipSkip, '--clip-skip'),
    guidance: {
      method: f.guidance as NonNullable<Exclude<GenerateOptions['guidance'], number>>['method'],
      scale: num(f.cfg, '--cfg'),
      schedule: f.guidanceSchedule as NonNullable<Exclude<GenerateOptions['guidance'], number>>['schedule'],
      rescale: num(f.rescale, '--rescale'),
    },
    attentionScaling: f.attentionScaling as GenerateOptions['attentionScaling'],
    vaeTiling: vaeTilingFlag(f.vaeTiling),
  };
}

export function register(program: Command): void {
  program
    .command('generate', { isDefault: true })
    .description('generate an image from a prompt and write it as PNG (the default command)')
    .argument('<prompt>', 'the prompt; supports (word:1.2), (word), [word], BREAK')
    .option(
      '-m, --model <path>',
      'a .safetensors checkpoint, a diffusers folder or a layered model folder (default: the embedded model)',
    )
    .option('-o, --output <file>', 'PNG file to write (.png; checked before generating)', 'out.png')
    .option('-W, --width <px>', 'width, a multiple of 8 (of 16 for the embedded model)')
    .option('-H, --height <px>', 'height, a multiple of 8 (of 16 for the embedded model)')
    .option('--size <WxH>', 'size as WxH (or N for a square)')
    .option('--steps <n>', 'sampling steps')
    .option('--sampler <name>', 'euler, euler-a, heun, dpmpp-2m, dpmpp-2m-sde, ddim, pndm, lms, unipc, lcm')
    .option('--schedule <name>', 'default, karras, exponential, sgm-uniform')
    .option('--cfg <scale>', 'guidance scale (λ in [0, 1] for cfg++)')
    .option('--guidance <method>', GUIDANCE_METHODS.join(', '))
    .option('--guidance-schedule <kind>', 'constant, linear, cosine')
    .option('--rescale <phi>', 'guidance rescale φ in [0, 1]')
    .option('--attention-scaling <mode>', 'auto, entropy, none')
    .option('--seed <n>', 'seed (torch CPU compatible)')
    .option('--negative <prompt>', 'negative prompt')
    .option('--eta <n>', 'DDIM η / ancestral noise amount')
    .option('--clip-skip <n>', 'skip the last n text-encoder layers')
    .option('--vae-tiling <mode>', 'auto, true (on), false (off)')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--prediction <type>', 'epsilon or v_prediction, when a single file cannot tell')
    .option('--config <json>', 'JSON partial model config for what the weights cannot tell')
    .option('-q, --quiet', 'no progress bar or summary')
    .action(async (prompt: string, f: GenerateFlags) => {
      // every flag is checked before the model loads, the output path before the generation
      const config = jsonObjectFlag(f.config, '--config');
      const options = toGenerateOptions(prompt, f);
      const threads = f.threads === undefined ? undefined : intFlag(f.threads, '--threads', 0, 1024);
      const loadOptions = { threads, prediction: predictionFlag(f.prediction), config: config as never };
      const out = checkOutputPath(f.output);
      const pipe = await (f.model === undefined
        ? loadPipeline(undefined, loadOptions)
        : loadPipeline(f.model, loadOptions));
      try {
        const bar =
          !f.quiet && process.stderr.isTTY
            ? new SingleBar({ format: 'denoising [{bar}] {value}/{total} | ETA {eta}s', stream: process.stderr })
            : undefined;
        const abort = new AbortController();
        const onSigint = () => abort.abort(new Error('interrupted'));
        process.once('SIGINT', onSigint);
        options.signal = abort.signal;
        options.onProgress = (e) => {
          if (!bar) return;
          if (e.step === 1) bar.start(e.steps, 0);
          bar.update(e.step, { eta: Math.round(e.etaMs / 1000) });
        };
        const result = await pipe
          .generate(options)
          .catch((err) => {
            throw flagNames(err, f);
          })
          .finally(() => {
            bar?.stop();
            process.off('SIGINT', onSigint);
          });
        await result.image.toFile(out);
        if (!f.quiet) {
          const t = result.timings;
          process.stderr.write(
            `${result.image.width}x${result.image.height}, seed ${result.seed}: ${(t.perStepMs / 1000).toFixed(2)} s/step, ` +
              `total ${(t.totalMs / 1000).toFixed(1)} s (text ${(t.textMs / 1000).toFixed(2)}, denoise ${(t.denoiseMs / 1000).toFixed(1)}, ` +
              `decode ${(t.decodeMs / 1000).toFixed(1)}), peak RSS ${(t.peakRssBytes / 2 ** 20).toFixed(0)} MB -> ${out}\n`,
          );
        }
      } finally {
        await pipe.dispose();
      }
    });
}
