// `bench kernels`: GEMM, convolution, attention and group-norm kernels at Stable Diffusion
// shapes, reported as GFLOP/s and as a fraction of the FMA peak measured in the same run.
import { invalid } from '../../errors.js';
import { loadDevBinding } from '../../native/load.js';
import { ArgCursor } from './args.js';

export const summary = 'CPU kernels (GEMM, conv, attention, group norm) vs the measured FMA peak';

interface BenchBinding {
  fmaPeak(
    threads: number,
    ms: number,
  ): {
    gflops: number;
    cpuGflops: number;
    isa: string;
    threads: number;
    seconds: number;
  };
  benchKernel(
    name: string,
    params: Record<string, number | string | boolean>,
    threads: number,
    minMs: number,
  ): {
    seconds: number;
    median: number;
    cpuSeconds: number;
    flops: number;
    peakBytes: number;
    repeats: number;
    isa: string;
  };
}

export interface KernelRow {
  name: string;
  shape: string;
  dtype: string;
  threads: number;
  gflops: number;
  peak_gflops: number;
  fraction: number;
  peak_bytes: number;
}

interface Case {
  name: string; // row name (contains gemm / conv / attention)
  kernel: 'linear' | 'conv2d' | 'attention' | 'group_norm';
  shape: string;
  dtype: string;
  params: Record<string, number | string | boolean>;
  threads: number;
}

interface Options {
  json: boolean;
  threads: number;
  minMs: number;
  peakMs: number;
  only: string[];
  cpuTime: boolean;
}

const HELP = `Usage: native-diffusion bench kernels [--json] [--threads N] [--min-ms MS] [--only a,b] [--cpu-time]
  --json        print exactly one JSON array of { name, shape, dtype, threads, gflops, peak_gflops, fraction, peak_bytes }
  --threads N   threads for every case (default: all hardware threads); the large GEMMs also run on 1
  --min-ms MS   minimum timed milliseconds per case (default 400; best of the repeats is reported)
  --only a,b    run only cases whose name or shape contains one of the substrings
  --cpu-time    rates from process CPU time instead of wall time (kernel and peak alike): on a shared
                machine this shows per-core efficiency; it cannot show thread scaling`;

function parse(args: string[], hardwareThreads: number): Options | undefined {
  const o: Options = { json: false, threads: hardwareThreads, minMs: 400, peakMs: 250, only: [], cpuTime: false };
  const cursor = new ArgCursor(args);
  for (let a = cursor.next(); a !== undefined; a = cursor.next()) {
    if (a === '--json') o.json = true;
    else if (a === '--threads') o.threads = cursor.int(1);
    else if (a === '--min-ms') o.minMs = cursor.int(0);
    else if (a === '--only') o.only = cursor.list();
    else if (a === '--cpu-time') o.cpuTime = true;
    else if (a === '--help' || a === '-h') return undefined;
    else invalid('--json, --threads, --min-ms, --only or --cpu-time', 'option', a);
  }
  return o;
}

export function cases(threads: number): Case[] {
  const out: Case[] = [];
  const gemm = (M: number, N: number, K: number, dtype: string, t: number) =>
    out.push({
      name: 'gemm',
      kernel: 'linear',
      shape: `${M}x${N}x${K}`,
      dtype,
      params: { M, N, K, dtype },
      threads: t,
    });
  const large = [
    [4096, 320, 1280],
    [4096, 1280, 320],
  ];
  for (const [M, N, K] of [...large, [1024, 640, 640], [256, 1280, 5120]]) {
    const isLarge = large.some((s) => s[0] === M && s[1] === N && s[2] === K);
    for (const dtype of ['f32', 'f16']) {
      if (isLarge && threads > 1) gemm(M, N, K, dtype, 1);
      gemm(M, N, K, dtype, threads);
    }
  }
  gemm(4096, 320, 1280, 'bf16', threads);
  const conv = (Cin: number, Cout: number, H: number, W: number, k: number, stride: number, dtype: string) =>
    out.push({
      name: `conv${k}x${k}${stride > 1 ? `s${stride}` : ''}`,
      kernel: 'conv2d',
      shape: `${Cin}->${Cout}x${H}x${W}`,
      dtype,
      params: { Cin, Cout, H, W, k, stride, dtype },
      threads,
    });
  conv(320, 320, 64, 64, 3, 1, 'f32');
  for (const [C, S] of [
    [320, 64],
    [640, 32],
    [1280, 16],
    [128, 512],
  ])
    conv(C, C, S, S, 3, 1, 'f16');
  conv(4, 320, 64, 64, 3, 1, 'f16');
  conv(320, 320, 64, 64, 3, 2, 'f16');
  conv(640, 320, 64, 64, 1, 1, 'f16');
  const attention = (nq: number, nk: number, label: string) =>
    out.push({
      name: `attention_${label}`,
      kernel: 'attention',
      shape: `${nq}x${nk}x8x40`,
      dtype: 'f32',
      params: { batch: 1, heads: 8, nq, nk, headDim: 40 },
      threads,
    });
  attention(4096, 4096, 'self');
  attention(4096, 77, 'cross');
  attention(16384, 16384, 'self');
  out.push({
    name: 'group_norm_silu',
    kernel: 'group_norm',
    shape: '320x64x64/32',
    dtype: 'f32',
    params: { C: 320, HW: 4096, groups: 32, silu: true },
    threads,
  });
  return out;
}

function table(rows: KernelRow[]): string {
  const head = ['name', 'shape', 'dtype', 'threads', 'GFLOP/s', 'of peak', 'peak mem'];
  const body = rows.map((r) => [
    r.name,
    r.shape,
    r.dtype,
    String(r.threads),
    r.gflops.toFixed(1),
    `${(100 * r.fraction).toFixed(1)}%`,
    `${(r.peak_bytes / 2 ** 20).toFixed(1)} MiB`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export async function run(args: string[]): Promise<void> {
  const native = loadDevBinding<{ bench: BenchBinding; buildInfo(): { hardwareThreads: number } }>();
  const opts = parse(args, native.buildInfo().hardwareThreads);
  if (!opts) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const selected = cases(opts.threads).filter(
    (c) => opts.only.length === 0 || opts.only.some((s) => c.name.includes(s) || c.shape.includes(s)),
  );
  // Peak first, for every thread count used (best of three short runs), then re-measured briefly
  // after every case: the machine is shared, so each fraction uses the best peak seen in this run.
  const peaks = new Map<number, number>();
  const measurePeak = (t: number, ms: number, times: number): void => {
    let best = peaks.get(t) ?? 0;
    for (let i = 0; i < times; i++) {
      const p = native.bench.fmaPeak(t, ms);
      best = Math.max(best, opts.cpuTime ? p.cpuGflops : p.gflops);
    }
    peaks.set(t, best);
  };
  for (const t of new Set(selected.map((c) => c.threads))) {
    measurePeak(t, opts.peakMs, 3);
    if (!opts.json) process.stderr.write(`FMA peak, ${t} thread(s): ${(peaks.get(t) ?? 0).toFixed(1)} GFLOP/s\n`);
  }
  const measured: Array<{ c: Case; gflops: number; peakBytes: number }> = [];
  for (const c of selected) {
    const r = native.bench.benchKernel(c.kernel, c.params, c.threads, opts.minMs);
    const seconds = opts.cpuTime ? r.cpuSeconds / c.threads : r.seconds;
    const gflops = r.flops / seconds / 1e9;
    measured.push({ c, gflops, peakBytes: r.peakBytes });
    measurePeak(c.threads, 100, 1);
    if (!opts.json)
      process.stderr.write(`  ${c.name} ${c.shape} ${c.dtype} x${c.threads}: ${gflops.toFixed(1)} GFLOP/s\n`);
  }
  const rows: KernelRow[] = measured.map(({ c, gflops, peakBytes }) => {
    const peak = peaks.get(c.threads) ?? 0;
    return {
      name: c.name,
      shape: c.shape,
      dtype: c.dtype,
      threads: c.threads,
      gflops,
      peak_gflops: peak,
      fraction: peak > 0 ? gflops / peak : 0,
      peak_bytes: peakBytes,
    };
  });
  process.stdout.write(opts.json ? `${JSON.stringify(rows)}\n` : `${table(rows)}\n`);
}
