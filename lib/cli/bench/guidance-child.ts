// The measured part of `bench guidance`, run in a fresh child process (forked by guidance.ts): one U-Net,
// then for every guidance method a short real sampling run through guidedModelCall (the same guided model
// call the pipeline makes), timing each step; then the S-CFG pieces on their own (U-Net pass with and
// without captured attention, interleaved; the mask/rate computation). Results go back over IPC; nothing
// is written to stdout (the parent may be printing JSON).

import { modelInputAlphaBar } from '../../guidance/characteristic-step.js';
import { scfg, scfgMasks } from '../../guidance/scfg.js';
import { scfgLayers } from '../../guidance/scfg-layers.js';
import { type GuidanceSchedule, scheduledWeight } from '../../guidance/schedule.js';
import { guidedModelCall } from '../../guidance/step.js';
import { detectModel } from '../../loading/detect.js';
import { NativeUNet } from '../../native/unet.js';
import type { GuidanceMethod, SamplerName } from '../../options.js';
import { createSampler } from '../../samplers/index.js';
import { cpuNow, noise } from './sd15-child.js';

export interface MethodSpec {
  /** row label, e.g. "cfg", "cfg/linear" */
  label: string;
  method: GuidanceMethod;
  sampler: SamplerName;
  scale: number;
  schedule: GuidanceSchedule;
  rescale: number;
}

export interface GuidanceTask {
  path: string;
  threads: number;
  width: number;
  height: number;
  /** sampler steps per method (the whole trajectory, from σ_max down) */
  steps: number;
  methods: MethodSpec[];
  /** interleaved plain / capture U-Net pairs for the S-CFG attention cost (0: skip) */
  captureRepeats: number;
}

export interface StepTiming {
  /** wall ms of the whole step: guided model call + sampler step */
  ms: number;
  /** process CPU ms (all threads) of the step */
  cpuMs: number;
  /** wall ms inside U-Net passes */
  unetMs: number;
  /** U-Net passes this step (characteristic: fixed-point iterations, each one batched pass) */
  passes: number;
  /** false when characteristic guidance's solver fell back to CFG this step */
  converged: boolean;
}

export interface MethodResult {
  spec: MethodSpec;
  steps: StepTiming[];
  /** the final latent is finite (the run did real work, not NaNs) */
  finite: boolean;
}

export interface CaptureResult {
  /** wall / CPU ms of plain and attention-capturing U-Net passes, interleaved pairs */
  plainMs: number[];
  plainCpuMs: number[];
  captureMs: number[];
  captureCpuMs: number[];
  /** S-CFG map work after the capture pass: the masks alone and the whole scfg() (masks + rate + combine) */
  masksMs: number[];
  scfgMs: number[];
  layers: number;
  layerSizes: string[];
}

export interface GuidanceChildResult {
  methods: MethodResult[];
  capture?: CaptureResult;
  warmupMs: number;
  maxRssBytes: number;
}

function log(msg: string): void {
  process.stderr.write(`  [${process.pid}] ${msg}\n`);
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '{}') as GuidanceTask;
  const detected = detectModel(task.path);
  const config = detected.config;
  const unet = NativeUNet.create(detected.weights, config.unet, { threads: task.threads });
  const h = task.height / 8;
  const w = task.width / 8;
  const channels = config.unet.inChannels;
  const contextDim = config.unet.contextDim;
  const n = channels * h * w;
  const context = noise(2 * 77 * contextDim, 7); // [uncond; cond] embeddings with realistic magnitudes
  const init = noise(n, 5);
  const batchInputs = (sample: Float32Array) => ({
    sample,
    sampleShape: [2, channels, h, w] as [number, number, number, number],
    timesteps: 500,
    context,
    contextShape: [2, 77, contextDim] as [number, number, number],
  });
  const pair = new Float32Array(2 * n);
  pair.set(init, 0);
  pair.set(init, n);

  // One untimed pass: first-touch of the mapped weights and the arena allocation.
  let t0 = performance.now();
  await unet.forward(batchInputs(pair));
  const warmupMs = performance.now() - t0;
  log(`warm-up U-Net pass ${task.width}x${task.height} batch 2: ${(warmupMs / 1000).toFixed(2)} s`);

  const methods: MethodResult[] = [];
  for (const spec of task.methods) {
    const sampler = createSampler(spec.sampler, { steps: task.steps, config: config.scheduler });
    let x: Float32Array = new Float32Array(n);
    for (let k = 0; k < n; k++) x[k] = init[k] * sampler.initNoiseSigma;
    const steps: StepTiming[] = [];
    const calls = sampler.modelCalls;
    for (let i = 0; i < calls; i++) {
      const c0 = cpuNow();
      t0 = performance.now();
      const xin = sampler.scaleModelInput(x, i);
      const r = await guidedModelCall({
        unet,
        method: spec.method,
        guided: true,
        weight: scheduledWeight(spec.scale, i, calls, spec.schedule),
        rescale: spec.rescale,
        xin,
        channels,
        height: h,
        width: w,
        timestep: sampler.timestep(i),
        context,
        tokens: 77,
        contextDim,
        forwardOptions: {},
        prediction: config.scheduler.predictionType,
        alphaBar: () => modelInputAlphaBar(sampler, i, config),
        checkAbort: () => undefined,
      });
      x = sampler.step(r.output, i, x, { noise: () => noise(n, 1000 + i), uncondOutput: r.uncondOutput });
      const step: StepTiming = {
        ms: performance.now() - t0,
        cpuMs: (cpuNow() - c0) * 1000,
        unetMs: r.unetMs,
        passes: r.iterations ?? 1,
        converged: r.converged ?? true,
      };
      steps.push(step);
      log(
        `${spec.label} (${spec.sampler}) step ${i + 1}/${calls}: ${(step.ms / 1000).toFixed(2)} s, ` +
          `${step.passes} U-Net pass(es), ${(step.ms - step.unetMs).toFixed(1)} ms outside the U-Net`,
      );
    }
    methods.push({ spec, steps, finite: x.every(Number.isFinite) });
  }

  let capture: CaptureResult | undefined;
  if (task.captureRepeats > 0) {
    capture = {
      plainMs: [],
      plainCpuMs: [],
      captureMs: [],
      captureCpuMs: [],
      masksMs: [],
      scfgMs: [],
      layers: 0,
      layerSizes: [],
    };
    for (let r = 0; r < task.captureRepeats; r++) {
      let c0 = cpuNow();
      t0 = performance.now();
      await unet.forward(batchInputs(pair));
      capture.plainMs.push(performance.now() - t0);
      capture.plainCpuMs.push((cpuNow() - c0) * 1000);
      c0 = cpuNow();
      t0 = performance.now();
      const out = await unet.forward(batchInputs(pair), { captureAttention: true });
      capture.captureMs.push(performance.now() - t0);
      capture.captureCpuMs.push((cpuNow() - c0) * 1000);
      t0 = performance.now();
      const layers = scfgLayers(out.attention);
      scfgMasks(layers, h, w);
      capture.masksMs.push(performance.now() - t0);
      t0 = performance.now();
      scfg({
        layers: scfgLayers(out.attention),
        epsUncond: out.output.subarray(0, n),
        epsCond: out.output.subarray(n, 2 * n),
        channels,
        height: h,
        width: w,
        scale: 7.5,
      });
      capture.scfgMs.push(performance.now() - t0);
      capture.layers = layers.length;
      capture.layerSizes = layers.map((l) => `${l.height}x${l.width}`);
      log(
        `U-Net pair ${r + 1}/${task.captureRepeats}: plain ${(capture.plainMs[r] / 1000).toFixed(2)} s, ` +
          `with attention ${(capture.captureMs[r] / 1000).toFixed(2)} s; S-CFG maps ${capture.scfgMs[r].toFixed(1)} ms`,
      );
    }
  }
  unet.dispose();
  const result: GuidanceChildResult = {
    methods,
    capture,
    warmupMs,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  await new Promise<void>((resolve, reject) =>
    process.send?.(result, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

main().catch((err: unknown) => {
  const e = err as Error & { code?: string };
  process.stderr.write(`bench child failed: ${e.code ? `${e.code}: ` : ''}${e.stack ?? e.message}\n`);
  process.exitCode = 1;
});
