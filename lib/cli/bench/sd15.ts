// `bench sd15`: the whole-model benchmark on a random full-size SD 1.5 checkpoint (generated into a
// cache directory on first use). Measures, each piece in a fresh child process (sd15-child.ts):
// the text encoder, one U-Net step with CFG (batch 2) at 512², 768² and 640×384, the VAE decode at
// the same sizes, a 512² txt2img through loadPipeline (peak RSS vs the weight bytes) and a 1024²
// generation (peak RSS and the U-Net's arena peak, which must stay far below one N×N matrix).
// FLOPs come from the graph (flops.ts); the FMA peak is measured in the same run.
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { invalid } from '../../errors.js';
import { detectModel } from '../../loading/detect.js';
import { loadDevBinding } from '../../native/load.js';
import { writeCheckpoint } from '../make-checkpoint.js';
import { type ModelBenchOptions, modelBenchDefaults, parseModelBenchArgs, parseSize } from './args.js';
import { runBenchChild } from './child.js';
import { textEncoderFlops, unetFlops, vaeDecoderFlops } from './flops.js';
import type { ChildResult, ChildTask, OpProfile, Timed } from './sd15-child.js';

export const summary = 'SD 1.5 U-Net step / VAE decode / text encoder / txt2img on random full-size weights';

export interface Sd15Row {
  name: 'unet_step_cfg' | 'vae_decode' | 'text_encoder' | 'txt2img_total';
  width: number;
  height: number;
  dtype: string;
  threads: number;
  seconds: number;
  tflop: number;
  fraction: number;
  peak_rss_bytes: number;
  /** extra context (not part of the required schema): repeats, steps, arena peak, peak GFLOP/s */
  steps?: number;
  peak_activation_bytes?: number;
  peak_gflops?: number;
}

interface Options extends ModelBenchOptions {
  skip1024: boolean;
  profile: boolean;
  /** U-Net / VAE sizes (default 512x512, 768x768, 640x384) */
  sizes: Array<{ width: number; height: number }>;
}

const HELP = `Usage: native-diffusion bench sd15 [--json] [--threads N] [--dtype f16|f32] [--cache DIR] [--steps N]
                                    [--cpu-time] [--skip-1024] [--only unet,vae,text,txt2img,1024] [--profile]
  --json        print exactly one JSON array of { name, width, height, dtype, threads, seconds, tflop, fraction,
                peak_rss_bytes } (names unet_step_cfg, vae_decode, text_encoder, txt2img_total; a few extra keys)
  --threads N   threads for every model (default 2)
  --dtype D     weight dtype of the generated checkpoint (default f16)
  --cache DIR   where the random checkpoint is kept (default $ND_BENCH_CACHE or ~/.cache/native-diffusion/bench)
  --steps N     U-Net steps timed at the first size (default 2: the best is reported; other sizes run 1)
  --cpu-time    seconds and fractions from process CPU time / threads (for shared machines)
  --skip-1024   leave out the 1024x1024 generation (the longest piece)
  --only list   run only these pieces
  --sizes list  U-Net / VAE sizes, WxH comma-separated (default 512x512,768x768,640x384)
  --profile     print where the time of a U-Net step / VAE decode / text encode goes, per op type (stderr)
  --width-scale S  narrow every width of the generated model (0 < S <= 1; for tests, not a benchmark)`;

function parse(args: string[]): Options | undefined {
  const o: Options = {
    ...modelBenchDefaults(2),
    skip1024: false,
    profile: false,
    sizes: [
      { width: 512, height: 512 },
      { width: 768, height: 768 },
      { width: 640, height: 384 },
    ],
  };
  return parseModelBenchArgs(args, o, ['--skip-1024', '--sizes', '--profile'], (a, cursor) => {
    if (a === '--skip-1024') o.skip1024 = true;
    else if (a === '--profile') o.profile = true;
    else if (a === '--sizes') {
      const raw = cursor.value();
      const expected = 'sizes like 512x512,640x384 (multiples of 8 in 64..4096)';
      o.sizes = raw.split(',').map((s) => {
        if (!/^\d+x\d+$/.test(s)) invalid(expected, a, raw);
        return parseSize(s, a, expected);
      });
    } else return false;
    return true;
  });
}

export interface BenchBinding {
  fmaPeak(threads: number, ms: number): { gflops: number; cpuGflops: number; isa: string };
}

/** Runs one piece in a fresh child process (same loader flags, e.g. tsx) and returns its result. */
function runChild(task: ChildTask): Promise<ChildResult> {
  return runBenchChild(import.meta.url, 'sd15', task, `bench child "${task.kind}"`);
}

export async function ensureCheckpoint(
  o: Pick<Options, 'cache' | 'dtype' | 'widthScale'>,
  say: (s: string) => void,
): Promise<string> {
  mkdirSync(o.cache, { recursive: true });
  const scale = o.widthScale === 1 ? '' : `-w${o.widthScale}`;
  const path = join(o.cache, `sd15-random-${o.dtype}${scale}.safetensors`);
  if (existsSync(path)) {
    say(`checkpoint: ${path} (cached, ${(statSync(path).size / 2 ** 30).toFixed(2)} GiB)`);
  } else {
    const t0 = performance.now();
    const tmp = `${path}.partial-${process.pid}`;
    try {
      writeCheckpoint(tmp, { family: 'sd15', dtype: o.dtype, seed: 0, widthScale: o.widthScale });
      renameSync(tmp, path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    say(
      `checkpoint: generated ${path} (${(statSync(path).size / 2 ** 30).toFixed(2)} GiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  // Read the file once so every child maps warm page-cache pages: the first U-Net step then
  // measures the model, not the disk.
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    createReadStream(path, { highWaterMark: 8 << 20 })
      .on('data', () => undefined)
      .on('end', resolve)
      .on('error', reject);
  });
  say(`page cache warmed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

/** Per op type: wall and CPU seconds, share of the pass, calls; "untracked" is the pass minus its ops. */
function profileTable(title: string, p: OpProfile): string {
  const pass = p.forward ?? { wallSeconds: 0, cpuSeconds: 0, calls: 0 };
  const ops = Object.entries(p).filter(([k, v]) => k !== 'forward' && v.calls > 0);
  const tracked = ops.reduce((s, [, v]) => ({ w: s.w + v.wallSeconds, c: s.c + v.cpuSeconds }), { w: 0, c: 0 });
  ops.push([
    'untracked',
    { wallSeconds: pass.wallSeconds - tracked.w, cpuSeconds: pass.cpuSeconds - tracked.c, calls: 0 },
  ]);
  ops.sort((a, b) => b[1].cpuSeconds - a[1].cpuSeconds);
  const lines = ops.map(
    ([k, v]) =>
      `    ${k.padEnd(12)} ${v.wallSeconds.toFixed(3).padStart(8)} s wall ${v.cpuSeconds.toFixed(3).padStart(8)} s CPU ${((100 * v.cpuSeconds) / Math.max(pass.cpuSeconds, 1e-9)).toFixed(1).padStart(5)}%  ${String(v.calls).padStart(5)} calls`,
  );
  return [
    `  profile ${title}: pass ${pass.wallSeconds.toFixed(3)} s wall, ${pass.cpuSeconds.toFixed(3)} s CPU`,
    ...lines,
  ].join('\n');
}

function table(rows: Sd15Row[]): string {
  const head = ['name', 'size', 'dtype', 'thr', 'seconds', 'TFLOP', 'GFLOP/s', 'of peak', 'peak RSS', 'U-Net arena'];
  const mib = (b?: number) => (b ? `${(b / 2 ** 20).toFixed(0)} MiB` : '-');
  const body = rows.map((r) => [
    r.name,
    r.width ? `${r.width}x${r.height}` : '77 tok',
    r.dtype,
    String(r.threads),
    r.seconds.toFixed(2),
    r.tflop.toFixed(3),
    ((r.tflop * 1e3) / r.seconds).toFixed(1),
    `${(100 * r.fraction).toFixed(1)}%`,
    mib(r.peak_rss_bytes),
    mib(r.peak_activation_bytes),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export async function run(args: string[]): Promise<void> {
  const o = parse(args);
  if (!o) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const want = (piece: string) => o.only.length === 0 || o.only.includes(piece);
  const started = performance.now();
  const native = loadDevBinding<{ bench: BenchBinding }>();
  const path = await ensureCheckpoint(o, say);
  const weightBytes = statSync(path).size;
  const config = detectModel(path).config; // FLOPs of the graph actually run

  let peak = 0;
  const measurePeak = (ms: number, times: number) => {
    for (let i = 0; i < times; i++) {
      const p = native.bench.fmaPeak(o.threads, ms);
      peak = Math.max(peak, o.cpuTime ? p.cpuGflops : p.gflops);
    }
  };
  measurePeak(250, 3);
  say(`FMA peak, ${o.threads} thread(s): ${peak.toFixed(1)} GFLOP/s (best of the run, re-measured after every piece)`);
  const seconds = (t: Timed, i: number) => (o.cpuTime ? t.cpuSeconds[i] / o.threads : t.seconds[i]);
  const best = (t: Timed) => Math.min(...t.seconds.map((_, i) => seconds(t, i)));
  const rows: Array<Omit<Sd15Row, 'fraction' | 'peak_gflops'>> = [];
  const base = { dtype: o.dtype, threads: o.threads };
  const sizes = o.sizes.map((s, i) => ({ ...s, steps: i === 0 ? o.steps : 1 }));

  if (want('text')) {
    const r = await runChild({
      kind: 'text',
      path,
      threads: o.threads,
      profile: o.profile,
      sizes: [{ width: 0, height: 0, steps: 3 }],
    });
    const t = r.timed[0];
    if (t.profile) say(profileTable('text encoder (77 tokens)', t.profile));
    rows.push({
      ...base,
      name: 'text_encoder',
      width: 0,
      height: 0,
      seconds: best(t),
      tflop: textEncoderFlops(config.textEncoder).total / 1e12,
      peak_rss_bytes: r.maxRssBytes,
      steps: t.seconds.length,
    });
    measurePeak(100, 1);
  }
  if (want('unet')) {
    say(
      `U-Net with CFG (batch 2): ${o.steps} step(s) at ${o.sizes[0].width}x${o.sizes[0].height} (best reported)${
        o.sizes.length > 1
          ? `, 1 step at ${o.sizes
              .slice(1)
              .map((s) => `${s.width}x${s.height}`)
              .join(' and ')}`
          : ''
      }`,
    );
    const r = await runChild({ kind: 'unet', path, threads: o.threads, profile: o.profile, sizes });
    for (const t of r.timed) if (t.profile) say(profileTable(`U-Net step ${t.width}x${t.height}`, t.profile));
    for (const t of r.timed)
      rows.push({
        ...base,
        name: 'unet_step_cfg',
        width: t.width,
        height: t.height,
        seconds: best(t),
        tflop: unetFlops(config.unet, t.height / 8, t.width / 8, 2).total / 1e12,
        peak_rss_bytes: r.maxRssBytes,
        steps: t.seconds.length,
        peak_activation_bytes: t.peakActivationBytes,
      });
    measurePeak(100, 1);
  }
  if (want('vae')) {
    say('VAE decode (batch 1, untiled): 1 run per size');
    const r = await runChild({
      kind: 'vae',
      path,
      threads: o.threads,
      profile: o.profile,
      sizes: sizes.map((s) => ({ ...s, steps: 1 })),
    });
    for (const t of r.timed) if (t.profile) say(profileTable(`VAE decode ${t.width}x${t.height}`, t.profile));
    for (const t of r.timed)
      rows.push({
        ...base,
        name: 'vae_decode',
        width: t.width,
        height: t.height,
        seconds: best(t),
        tflop: vaeDecoderFlops(config.vae, t.height / 8, t.width / 8).total / 1e12,
        peak_rss_bytes: r.maxRssBytes,
        steps: 1,
      });
    measurePeak(100, 1);
  }
  const txt2imgFlops = (w: number, h: number, steps: number) =>
    (2 * textEncoderFlops(config.textEncoder).total +
      steps * unetFlops(config.unet, h / 8, w / 8, 2).total +
      vaeDecoderFlops(config.vae, h / 8, w / 8).total) /
    1e12;
  if (want('txt2img')) {
    const steps = 2;
    say(`txt2img 512x512 through loadPipeline (euler, ${steps} steps, CFG 7.5) in a fresh process: peak RSS`);
    const r = await runChild({
      kind: 'txt2img',
      path,
      threads: o.threads,
      sizes: [{ width: 512, height: 512, steps }],
    });
    const t = r.timed[0];
    rows.push({
      ...base,
      name: 'txt2img_total',
      width: 512,
      height: 512,
      seconds: seconds(t, 0),
      tflop: txt2imgFlops(512, 512, steps),
      peak_rss_bytes: r.maxRssBytes,
      steps,
    });
    const over = r.maxRssBytes - weightBytes;
    say(
      `  peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB = weights ${(weightBytes / 2 ** 20).toFixed(0)} MiB + ${(over / 2 ** 20).toFixed(0)} MiB (target: + 700 MB) -> ${over <= 700e6 ? 'within' : 'OVER'} target`,
    );
    measurePeak(100, 1);
  }
  if (want('1024') && !o.skip1024) {
    say('generation 1024x1024 (1 step, CFG batch 2, untiled VAE) from the pipeline components in a fresh process');
    const r = await runChild({
      kind: 'generate-components',
      path,
      threads: o.threads,
      sizes: [{ width: 1024, height: 1024, steps: 1 }],
    });
    const t = r.timed[0];
    rows.push({
      ...base,
      name: 'txt2img_total',
      width: 1024,
      height: 1024,
      seconds: seconds(t, 0),
      tflop: txt2imgFlops(1024, 1024, 1),
      peak_rss_bytes: r.maxRssBytes,
      steps: 1,
      peak_activation_bytes: t.peakActivationBytes,
    });
    // One f32 N×N matrix of the 1024² level-0 self-attention (N = 128·128 tokens) for one head and one batch element.
    const nn = (128 * 128) ** 2 * 4;
    const arena = t.peakActivationBytes ?? 0;
    say(
      `  U-Net arena peak ${(arena / 2 ** 20).toFixed(0)} MiB vs one N×N f32 attention matrix ${(nn / 2 ** 20).toFixed(0)} MiB -> ${arena < nn ? 'no N² buffer' : 'N² BUFFER SUSPECTED'}`,
    );
    measurePeak(100, 1);
  }

  const out: Sd15Row[] = rows.map((r) => ({
    ...r,
    fraction: peak > 0 ? (r.tflop * 1e3) / r.seconds / peak : 0,
    peak_gflops: peak,
  }));
  say(
    `suite took ${((performance.now() - started) / 1000).toFixed(0)} s; seconds are ${o.cpuTime ? 'process CPU time / threads' : 'wall time'}; FLOPs: convs, linears and attention matmuls of the graph (lib/cli/bench/flops.ts)`,
  );
  process.stdout.write(o.json ? `${JSON.stringify(out)}\n` : `${table(out)}\n`);
}
