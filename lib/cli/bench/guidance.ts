// `bench guidance`: what each guidance method costs per sampling step over plain CFG, on a random full-size
// SD 1.5 checkpoint (the one `bench sd15` generates) at 512² by default. In one fresh child process
// (guidance-child.ts) every method runs a short real sampling run through guidedModelCall — the guided
// model call the pipeline makes — and each step is timed; the S-CFG pieces are also timed on their own:
// the U-Net pass with attention capture vs without (interleaved pairs) and the mask/rate computation,
// since the ≤ 5% S-CFG target is about those. Characteristic guidance reports its fixed-point iterations
// (U-Net passes) per step. The FMA peak is measured in the same run, so the step rows carry a fraction.
import { invalid } from '../../errors.js';
import { detectModel } from '../../loading/detect.js';
import { loadDevBinding } from '../../native/load.js';
import { type ModelBenchOptions, modelBenchDefaults, parseModelBenchArgs, parseSize } from './args.js';
import { runBenchChild } from './child.js';
import { unetFlops } from './flops.js';
import type { CaptureResult, GuidanceChildResult, GuidanceTask, MethodResult, MethodSpec } from './guidance-child.js';
import { type BenchBinding, ensureCheckpoint } from './sd15.js';

export const summary =
  'per-step cost of each guidance method (S-CFG, CFG++, schedules, rescale, characteristic) vs CFG';

export interface GuidanceRow {
  /** guidance_step: one sampling step; scfg_maps: S-CFG mask/rate work; unet_capture_attention: the capture pass */
  name: 'guidance_step' | 'scfg_maps' | 'unet_capture_attention';
  method: string;
  width: number;
  height: number;
  dtype: string;
  threads: number;
  /** guidance_step: median ms over the steps (characteristic: mean, its steps differ in passes) */
  ms_per_step: number;
  /** extra time over the CFG step (scfg_maps: its share of a CFG step; unet_capture_attention: over a plain pass) */
  overhead_pct: number;
  unet_passes_per_step: number;
  /** characteristic guidance: mean fixed-point iterations (= batched U-Net passes) per step */
  iterations_per_step?: number;
  /** achieved U-Net GFLOP/s over the measured FMA peak (guidance_step rows) */
  fraction?: number;
  /** extra context: sampler, steps timed, the statistic, ms outside the U-Net, convergence */
  sampler?: string;
  steps?: number;
  stat?: 'median' | 'mean';
  unet_ms_per_step?: number;
  other_ms_per_step?: number;
  converged_steps?: number;
  /** guidance_step: the overhead rebuilt from load-independent parts (see estimatedOverheads) */
  overhead_est_pct?: number;
  /** scfg_maps: of its ms, the token/foreground masks (attention maps, smoothing, argmax); the rest is the rate */
  masks_ms?: number;
  all_ms?: number[];
}

interface Options extends ModelBenchOptions {
  width: number;
  height: number;
}

export const METHODS: MethodSpec[] = [
  { label: 'cfg', method: 'cfg', sampler: 'euler', scale: 7.5, schedule: 'constant', rescale: 0 },
  { label: 's-cfg', method: 's-cfg', sampler: 'euler', scale: 7.5, schedule: 'constant', rescale: 0 },
  { label: 'cfg++', method: 'cfg++', sampler: 'ddim', scale: 0.6, schedule: 'constant', rescale: 0 },
  { label: 'cfg/linear', method: 'cfg', sampler: 'euler', scale: 7.5, schedule: 'linear', rescale: 0 },
  { label: 'cfg/cosine', method: 'cfg', sampler: 'euler', scale: 7.5, schedule: 'cosine', rescale: 0 },
  { label: 'cfg/rescale-0.7', method: 'cfg', sampler: 'euler', scale: 7.5, schedule: 'constant', rescale: 0.7 },
  { label: 'characteristic', method: 'characteristic', sampler: 'euler', scale: 7.5, schedule: 'constant', rescale: 0 },
];

const HELP = `Usage: native-diffusion bench guidance [--json] [--threads N] [--dtype f16|f32] [--cache DIR] [--steps N]
                                        [--size N | --size WxH] [--cpu-time] [--only list] [--width-scale S]
  Methods: ${METHODS.map((m) => `${m.label} (${m.sampler})`).join(', ')}; every one runs N real sampler
  steps (the whole trajectory) with batched [uncond; cond] U-Net passes through guidedModelCall.
  --json        print exactly one JSON array of { name, method, width, height, dtype, threads, ms_per_step,
                overhead_pct, unet_passes_per_step, iterations_per_step?, fraction? } (names guidance_step,
                scfg_maps, unet_capture_attention; a few extra keys)
  --threads N   U-Net threads (default 2)
  --dtype D     weight dtype of the generated checkpoint (default f16)
  --cache DIR   where the random checkpoint is kept (default $ND_BENCH_CACHE or ~/.cache/native-diffusion/bench)
  --steps N     sampler steps per method (default 3); ms_per_step is the median (characteristic: the mean)
  --size S      image size, N or WxH, multiples of 8 (default 512)
  --cpu-time    ms from process CPU time / threads (for shared machines; single-threaded JS work then counts 1/threads)
  --only list   run only these methods (cfg is always run: it is the baseline)
  --width-scale S  narrow every width of the generated model (0 < S <= 1; for tests, not a benchmark)`;

function parse(args: string[]): Options | undefined {
  const o: Options = { ...modelBenchDefaults(3), width: 512, height: 512 };
  const parsed = parseModelBenchArgs(args, o, ['--size'], (a, cursor) => {
    if (a !== '--size') return false;
    Object.assign(o, parseSize(cursor.value(), a, 'a size like 512 or 640x384 (multiples of 8 in 64..4096)'));
    return true;
  });
  if (!parsed) return undefined;
  const known = METHODS.map((m) => m.label);
  for (const m of o.only)
    if (!known.includes(m)) invalid(`methods among ${known.join(', ')}`, '--only', o.only.join(','));
  return o;
}

function runChild(task: GuidanceTask): Promise<GuidanceChildResult> {
  return runBenchChild(import.meta.url, 'guidance', task, 'bench guidance child');
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const pct = (x: number, base: number): number => (100 * (x - base)) / base;

/** The step rows: per method, the per-step statistic and its overhead over the CFG row. */
function stepRows(
  results: MethodResult[],
  o: Options,
  passFlop: number,
  peakGflops: number,
): Array<Omit<GuidanceRow, 'overhead_pct'> & { overhead_pct?: number }> {
  return results.map((r) => {
    const chr = r.spec.method === 'characteristic';
    const stat = chr ? mean : median;
    const ms = r.steps.map((s) => (o.cpuTime ? s.cpuMs / o.threads : s.ms));
    const passes = mean(r.steps.map((s) => s.passes));
    const msPerStep = stat(ms);
    const row = {
      name: 'guidance_step' as const,
      method: r.spec.label,
      width: o.width,
      height: o.height,
      dtype: o.dtype,
      threads: o.threads,
      ms_per_step: msPerStep,
      unet_passes_per_step: passes,
      fraction: peakGflops > 0 ? (passes * passFlop) / (msPerStep / 1000) / 1e9 / peakGflops : 0,
      sampler: r.spec.sampler,
      steps: r.steps.length,
      stat: chr ? ('mean' as const) : ('median' as const),
      unet_ms_per_step: stat(r.steps.map((s) => s.unetMs)),
      other_ms_per_step: stat(r.steps.map((s) => s.ms - s.unetMs)),
      all_ms: ms.map((v) => Math.round(v)),
    };
    if (!chr) return row;
    return {
      ...row,
      iterations_per_step: passes,
      converged_steps: r.steps.filter((s) => s.converged).length,
    };
  });
}

function captureRows(c: CaptureResult, o: Options, cfgMs: number): GuidanceRow[] {
  const base = { width: o.width, height: o.height, dtype: o.dtype, threads: o.threads, method: 's-cfg' };
  const plain = median(o.cpuTime ? c.plainCpuMs.map((v) => v / o.threads) : c.plainMs);
  const withAttention = median(o.cpuTime ? c.captureCpuMs.map((v) => v / o.threads) : c.captureMs);
  const maps = median(c.scfgMs);
  return [
    {
      ...base,
      name: 'scfg_maps',
      ms_per_step: maps,
      overhead_pct: (100 * maps) / cfgMs,
      unet_passes_per_step: 0,
      stat: 'median',
      steps: c.scfgMs.length,
      masks_ms: median(c.masksMs),
      all_ms: c.scfgMs.map((v) => Math.round(v * 10) / 10),
    },
    {
      ...base,
      name: 'unet_capture_attention',
      ms_per_step: withAttention,
      overhead_pct: pct(withAttention, plain),
      unet_passes_per_step: 1,
      stat: 'median',
      steps: c.captureMs.length,
      unet_ms_per_step: plain,
      all_ms: c.captureMs.map((v) => Math.round(v)),
    },
  ];
}

/**
 * Overheads rebuilt from the parts that do not drift with the machine's load (wall time): every method's
 * single-pass U-Net graph is the same, so a step costs passes × (the median U-Net pass over all plain steps)
 * + its own time outside the U-Net (+ for S-CFG the paired capture-vs-plain difference).
 */
function estimatedOverheads(r: GuidanceChildResult): Map<string, number> {
  const plainPasses = r.methods
    .filter((m) => m.spec.method !== 's-cfg' && m.spec.method !== 'characteristic')
    .flatMap((m) => m.steps.map((s) => s.unetMs));
  const pass = median(plainPasses);
  const c = r.capture;
  const captureExtra = c ? median(c.captureMs.map((v, i) => v - c.plainMs[i])) : 0;
  const cost = (m: MethodResult) => {
    const passes = mean(m.steps.map((s) => s.passes));
    const other = median(m.steps.map((s) => s.ms - s.unetMs));
    return passes * pass + other + (m.spec.method === 's-cfg' ? captureExtra : 0);
  };
  const cfg = r.methods.find((m) => m.spec.label === 'cfg');
  const out = new Map<string, number>();
  if (!cfg) return out;
  for (const m of r.methods) out.set(m.spec.label, pct(cost(m), cost(cfg)));
  return out;
}

const signedPct = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`;

function table(rows: GuidanceRow[]): string {
  const head = ['name', 'method', 'sampler', 'size', 'dtype', 'thr', 'ms/step', 'vs CFG', 'est.', 'U-Net/step'];
  head.push('non-U-Net ms');
  head.push('iters', 'of peak', 'steps (ms)');
  const body = rows.map((r) => [
    r.name,
    r.method,
    r.sampler ?? '-',
    `${r.width}x${r.height}`,
    r.dtype,
    String(r.threads),
    r.ms_per_step.toFixed(r.ms_per_step < 100 ? 2 : 0),
    signedPct(r.overhead_pct),
    r.overhead_est_pct === undefined ? '-' : signedPct(r.overhead_est_pct),
    r.unet_passes_per_step.toFixed(r.unet_passes_per_step % 1 ? 2 : 0),
    r.other_ms_per_step === undefined ? '-' : r.other_ms_per_step.toFixed(1),
    r.iterations_per_step === undefined
      ? '-'
      : `${r.iterations_per_step.toFixed(2)}${r.converged_steps === r.steps ? '' : ` (${r.steps! - r.converged_steps!} fell back)`}`,
    r.fraction ? `${(100 * r.fraction).toFixed(1)}%` : '-',
    (r.all_ms ?? []).join(' '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 5 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export async function run(args: string[]): Promise<void> {
  const o = parse(args);
  if (!o) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const started = performance.now();
  const native = loadDevBinding<{ bench: BenchBinding }>();
  const path = await ensureCheckpoint(o, say);
  const config = detectModel(path).config;
  let peak = 0;
  const measurePeak = (ms: number, times: number) => {
    for (let i = 0; i < times; i++) {
      const p = native.bench.fmaPeak(o.threads, ms);
      peak = Math.max(peak, o.cpuTime ? p.cpuGflops : p.gflops);
    }
  };
  measurePeak(250, 3);
  say(`FMA peak, ${o.threads} thread(s): ${peak.toFixed(1)} GFLOP/s (best of the run)`);

  const methods = METHODS.filter((m) => m.label === 'cfg' || o.only.length === 0 || o.only.includes(m.label));
  const withScfg = methods.some((m) => m.method === 's-cfg');
  say(
    `guidance at ${o.width}x${o.height}, ${o.steps} sampler step(s) per method: ${methods.map((m) => m.label).join(', ')}` +
      (withScfg ? `; then ${o.steps} interleaved U-Net pairs without / with attention capture` : ''),
  );
  const r = await runChild({
    path,
    threads: o.threads,
    width: o.width,
    height: o.height,
    steps: o.steps,
    methods,
    captureRepeats: withScfg ? o.steps : 0,
  });
  measurePeak(100, 1);
  const broken = r.methods.filter((m) => !m.finite).map((m) => m.spec.label);
  if (broken.length) say(`WARNING: non-finite latents after ${broken.join(', ')}`);

  const passFlop = unetFlops(config.unet, o.height / 8, o.width / 8, 2).total;
  const steps = stepRows(r.methods, o, passFlop, peak);
  const cfgMs = steps.find((s) => s.method === 'cfg')?.ms_per_step ?? Number.NaN;
  const est = estimatedOverheads(r);
  const rows: GuidanceRow[] = steps.map((s) => ({
    ...s,
    overhead_pct: pct(s.ms_per_step, cfgMs),
    overhead_est_pct: est.get(s.method),
  }));
  if (r.capture) {
    rows.push(...captureRows(r.capture, o, cfgMs));
    say(
      `S-CFG layers: ${r.capture.layers} (${r.capture.layerSizes.join(', ')}); maps ${median(r.capture.scfgMs).toFixed(1)} ms ` +
        `(median), of which masks ${median(r.capture.masksMs).toFixed(1)} ms, rate and combine the rest`,
    );
  }
  say(
    `suite took ${((performance.now() - started) / 1000).toFixed(0)} s (warm-up pass ${(r.warmupMs / 1000).toFixed(1)} s, ` +
      `child peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB); ms are ${o.cpuTime ? 'process CPU time / threads' : 'wall time'}; ` +
      'vs CFG = (ms_per_step − CFG ms_per_step) / CFG ms_per_step; est. = the same from passes × the median plain ' +
      'U-Net pass + time outside the U-Net (+ S-CFG capture cost), robust to load drift; ' +
      'scfg_maps vs CFG = its ms over the CFG step; ' +
      'unet_capture_attention vs CFG = over a plain pass (interleaved pairs)',
  );
  process.stdout.write(o.json ? `${JSON.stringify(rows)}\n` : `${table(rows)}\n`);
}
