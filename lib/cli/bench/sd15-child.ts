// One measured piece of `bench sd15`, run in a fresh child process (forked by sd15.ts) so that
// its peak resident memory is its own: the task arrives as a JSON argument, the result goes
// back over the IPC channel. Nothing is written to stdout (the parent may be printing JSON).

import { loadPipeline } from '../../load-pipeline.js';
import { detectModel } from '../../loading/detect.js';
import { loadBinding } from '../../native/load.js';
import { ClipTextEncoder } from '../../native/text-encoder.js';
import { NativeUNet } from '../../native/unet.js';
import { Vae } from '../../native/vae.js';
import { toNativeWeights } from '../../native/weights.js';

export interface ChildTask {
  kind: 'unet' | 'vae' | 'text' | 'txt2img' | 'generate-components';
  path: string;
  threads: number;
  sizes: Array<{ width: number; height: number; steps: number }>;
  /** collect op-level timers (models/profile.h) for the last repeat of each size */
  profile?: boolean;
}

export type OpProfile = Record<string, { wallSeconds: number; cpuSeconds: number; calls: number }>;

interface ProfileBinding {
  profile: { enable(on: boolean): void; reset(): void; read(): OpProfile };
}

export interface Timed {
  width: number;
  height: number;
  /** wall seconds of each repeat */
  seconds: number[];
  /** process CPU seconds (all threads) of each repeat */
  cpuSeconds: number[];
  /** U-Net arena peak of the pass, where known */
  peakActivationBytes?: number;
  /** per-phase wall seconds (txt2img) */
  phases?: Record<string, number>;
  /** op-level timers of the last repeat (with task.profile) */
  profile?: OpProfile;
}

export interface ChildResult {
  timed: Timed[];
  maxRssBytes: number;
  loadSeconds: number;
}

export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

let profiler: ProfileBinding['profile'] | undefined;

async function measure<T>(fn: () => Promise<T>): Promise<{ wall: number; cpu: number; value: T }> {
  profiler?.reset();
  const c0 = cpuNow();
  const t0 = performance.now();
  const value = await fn();
  return { wall: (performance.now() - t0) / 1000, cpu: cpuNow() - c0, value };
}

/** Deterministic pseudo-random N(0,1)-ish data (sum of uniforms): inputs only need realistic magnitudes. */
export function noise(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() - 1.5) * 2 * scale;
  return out;
}

function log(msg: string): void {
  process.stderr.write(`  [${process.pid}] ${msg}\n`);
}

async function runUNet(task: ChildTask, timed: Timed[]): Promise<void> {
  const detected = detectModel(task.path);
  const unet = NativeUNet.create(detected.weights, detected.config.unet, { threads: task.threads });
  const ctxDim = detected.config.unet.contextDim;
  const context = noise(2 * 77 * ctxDim, 7);
  for (const size of task.sizes) {
    const h = size.height / 8;
    const w = size.width / 8;
    const sample = noise(2 * 4 * h * w, 11);
    const t: Timed = { width: size.width, height: size.height, seconds: [], cpuSeconds: [] };
    for (let i = 0; i < size.steps; i++) {
      const r = await measure(() =>
        unet.forward({ sample, sampleShape: [2, 4, h, w], timesteps: 500, context, contextShape: [2, 77, ctxDim] }),
      );
      t.seconds.push(r.wall);
      t.cpuSeconds.push(r.cpu);
      t.profile = profiler?.read();
      log(
        `unet ${size.width}x${size.height} step ${i + 1}/${size.steps}: ${r.wall.toFixed(2)} s wall, ${r.cpu.toFixed(2)} s CPU`,
      );
    }
    t.peakActivationBytes = unet.peakActivationBytes;
    timed.push(t);
  }
  unet.dispose();
}

async function runVae(task: ChildTask, timed: Timed[]): Promise<void> {
  const detected = detectModel(task.path);
  const vae = new Vae(toNativeWeights(detected.weights, ['first_stage_model.']), detected.config.vae, {
    threads: task.threads,
  });
  for (const size of task.sizes) {
    const h = size.height / 8;
    const w = size.width / 8;
    const z = noise(4 * h * w, 13, 1 / detected.config.vae.scalingFactor);
    const t: Timed = { width: size.width, height: size.height, seconds: [], cpuSeconds: [] };
    for (let i = 0; i < size.steps; i++) {
      const r = await measure(() => vae.decode(z, [1, 4, h, w], { tile: false }));
      t.seconds.push(r.wall);
      t.cpuSeconds.push(r.cpu);
      t.profile = profiler?.read();
      log(`vae decode ${size.width}x${size.height}: ${r.wall.toFixed(2)} s wall, ${r.cpu.toFixed(2)} s CPU`);
    }
    timed.push(t);
  }
  await vae[Symbol.asyncDispose]();
}

async function runText(task: ChildTask, timed: Timed[]): Promise<void> {
  const detected = detectModel(task.path);
  const enc = new ClipTextEncoder(
    toNativeWeights(detected.weights, ['cond_stage_model.']),
    detected.config.textEncoder,
    {
      threads: task.threads,
    },
  );
  const ids = new Int32Array(77).fill(49407);
  ids[0] = 49406;
  for (let i = 1; i < 12; i++) ids[i] = 320 + 37 * i; // a dozen ordinary tokens, then end/padding
  const t: Timed = { width: 0, height: 0, seconds: [], cpuSeconds: [] };
  const repeats = task.sizes[0]?.steps ?? 3;
  for (let i = 0; i < repeats; i++) {
    const r = await measure(() => enc.encode(ids));
    t.seconds.push(r.wall);
    t.cpuSeconds.push(r.cpu);
    t.profile = profiler?.read();
  }
  log(`text encoder: ${t.seconds.map((s) => s.toFixed(3)).join(', ')} s`);
  timed.push(t);
  await enc[Symbol.asyncDispose]();
}

async function runTxt2img(task: ChildTask, timed: Timed[]): Promise<void> {
  const size = task.sizes[0];
  await using pipe = await loadPipeline(task.path, { threads: task.threads });
  const r = await measure(() =>
    pipe.generate({
      prompt: 'a lighthouse at dusk, oil painting',
      negativePrompt: 'blurry',
      width: size.width,
      height: size.height,
      steps: size.steps,
      sampler: 'euler',
      seed: 42,
    }),
  );
  const tm = r.value.timings;
  timed.push({
    width: size.width,
    height: size.height,
    seconds: [r.wall],
    cpuSeconds: [r.cpu],
    phases: { text: tm.textMs / 1000, denoise: tm.denoiseMs / 1000, decode: tm.decodeMs / 1000 },
  });
  log(`txt2img ${size.width}x${size.height}, ${size.steps} steps: ${r.wall.toFixed(1)} s`);
}

/**
 * A generation assembled from the same components as the pipeline (text encoder, U-Net with both
 * CFG halves batched, VAE decode), so that the U-Net's arena peak is observable (the pipeline keeps
 * its U-Net private). Used at 1024² to show that no N×N attention buffer is ever allocated.
 */
async function runGenerateComponents(task: ChildTask, timed: Timed[]): Promise<void> {
  const size = task.sizes[0];
  const detected = detectModel(task.path);
  const c = detected.config;
  const enc = new ClipTextEncoder(toNativeWeights(detected.weights, ['cond_stage_model.']), c.textEncoder, {
    threads: task.threads,
  });
  const unet = NativeUNet.create(detected.weights, c.unet, { threads: task.threads });
  const vae = new Vae(toNativeWeights(detected.weights, ['first_stage_model.']), c.vae, { threads: task.threads });
  const h = size.height / 8;
  const w = size.width / 8;
  const phases: Record<string, number> = {};
  const r = await measure(async () => {
    const ids = new Int32Array(2 * 77).fill(49407);
    ids[0] = 49406;
    ids[77] = 49406;
    let t0 = performance.now();
    const context = await enc.encode(ids);
    phases.text = (performance.now() - t0) / 1000;
    let x = noise(4 * h * w, 5);
    t0 = performance.now();
    for (let i = 0; i < size.steps; i++) {
      const sample = new Float32Array(2 * x.length);
      sample.set(x, 0);
      sample.set(x, x.length);
      const out = await unet.forward({
        sample,
        sampleShape: [2, 4, h, w],
        timesteps: 999 - i,
        context,
        contextShape: [2, 77, c.textEncoder.hidden],
      });
      const next = new Float32Array(x.length);
      for (let j = 0; j < x.length; j++) next[j] = x[j] - 0.1 * (out[j] + 7.5 * (out[x.length + j] - out[j]));
      x = next;
    }
    phases.denoise = (performance.now() - t0) / 1000;
    t0 = performance.now();
    for (let j = 0; j < x.length; j++) x[j] /= c.vae.scalingFactor;
    await vae.decode(x, [1, 4, h, w], { tile: false });
    phases.decode = (performance.now() - t0) / 1000;
  });
  timed.push({
    width: size.width,
    height: size.height,
    seconds: [r.wall],
    cpuSeconds: [r.cpu],
    peakActivationBytes: unet.peakActivationBytes,
    phases,
  });
  log(`generation ${size.width}x${size.height}, ${size.steps} step(s): ${r.wall.toFixed(1)} s`);
  unet.dispose();
  await enc[Symbol.asyncDispose]();
  await vae[Symbol.asyncDispose]();
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '{}') as ChildTask;
  const timed: Timed[] = [];
  if (task.profile) {
    profiler = loadBinding<ProfileBinding>().profile;
    profiler.enable(true);
  }
  const t0 = performance.now();
  if (task.kind === 'unet') await runUNet(task, timed);
  else if (task.kind === 'vae') await runVae(task, timed);
  else if (task.kind === 'text') await runText(task, timed);
  else if (task.kind === 'txt2img') await runTxt2img(task, timed);
  else if (task.kind === 'generate-components') await runGenerateComponents(task, timed);
  else throw new Error(`unknown bench task ${String(task.kind)}`);
  const result: ChildResult = {
    timed,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    loadSeconds: (performance.now() - t0) / 1000 - timed.reduce((s, t) => s + t.seconds.reduce((a, b) => a + b, 0), 0),
  };
  await new Promise<void>((resolve, reject) =>
    process.send?.(result, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

// Runs only as the forked child (other bench children import its helpers).
if (/sd15-child\.(js|ts)$/.test(process.argv[1] ?? '')) {
  main().catch((err: unknown) => {
    const e = err as Error & { code?: string };
    process.stderr.write(`bench child failed: ${e.code ? `${e.code}: ` : ''}${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  });
}
