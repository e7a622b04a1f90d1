// What a checkpoint is, for people (`native-diffusion inspect`) and for scripts (--json).
import { DiffusionError } from '../errors.js';
import { type ComponentSummary, type DetectOptions, detectModel, identifyModel, type ModelFormat } from './detect.js';
import type { ModelConfig, ModelFamily } from './types.js';

export interface InspectReport {
  path: string;
  format: ModelFormat | 'layered';
  family: ModelFamily;
  /** false when the family is recognised but cannot run yet (SDXL, layered) */
  supported: boolean;
  reason?: string;
  nativeSize?: number;
  predictionType?: string;
  dtype?: string;
  components?: Record<'unet' | 'vae' | 'textEncoder', ComponentSummary>;
  totalParameters?: number;
  config?: ModelConfig;
  sources?: Record<string, string>;
  files?: string[];
  unusedTensors?: string[];
  layered?: Record<string, unknown>;
}

/** The layered config with long lists (the vocabulary ids) shown by their length only. */
function layeredSummary(cfg: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(cfg).map(([k, v]) => [k, Array.isArray(v) && v.length > 16 ? `[${v.length} values]` : v]),
  );
}

export function inspectModel(path: string, options: DetectOptions = {}): InspectReport {
  const id = identifyModel(path);
  if (id.format === 'layered' && id.layered) {
    // runs through loadPipeline() as a LayeredPipeline (the embedded default model is one)
    const scales = id.layered.scales as number[] | undefined;
    return {
      path,
      format: 'layered',
      family: 'layered',
      supported: true,
      nativeSize: Array.isArray(scales) ? scales[scales.length - 1] : undefined,
      predictionType: 'v_prediction',
      layered: layeredSummary(id.layered),
    };
  }
  try {
    const m = detectModel(path, options);
    return {
      path,
      format: m.format,
      family: m.config.family,
      supported: true,
      nativeSize: m.config.nativeSize,
      predictionType: m.config.scheduler.predictionType,
      dtype: m.config.dtype,
      components: m.components,
      totalParameters: Object.values(m.components).reduce((a, c) => a + c.parameters, 0),
      config: m.config,
      sources: m.sources,
      files: m.files,
      unusedTensors: m.unusedTensors,
    };
  } catch (err) {
    if (!(err instanceof DiffusionError) || err.code !== 'ERR_UNSUPPORTED') throw err;
    if (id.family === 'unknown') throw err;
    return { path, format: id.format, family: id.family, supported: false, reason: err.message, layered: id.layered };
  }
}

const FAMILY_NAMES: Record<ModelFamily, string> = {
  sd1: 'Stable Diffusion 1.x',
  sd2: 'Stable Diffusion 2.x (epsilon)',
  'sd2-v': 'Stable Diffusion 2.x (v-prediction)',
  sdxl: 'Stable Diffusion XL',
  layered: 'native-diffusion layered multi-scale model',
  unknown: 'unknown',
};

function millions(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

function guessed(r: InspectReport, field: string): string {
  const s = r.sources?.[field];
  return s && s !== 'config' ? ` (${s === 'default' ? 'family default' : `from ${s}`})` : '';
}

export function formatInspect(r: InspectReport): string {
  const lines = [`${r.path}`, `  family        ${FAMILY_NAMES[r.family]} [${r.family}]`, `  format        ${r.format}`];
  if (!r.supported) {
    lines.push(`  supported     no: ${r.reason}`);
    if (r.layered) lines.push(`  config        ${JSON.stringify(r.layered)}`);
    return lines.join('\n');
  }
  if (r.format === 'layered') {
    lines.push('  supported     yes: loadPipeline(folder) or `native-diffusion -m folder` runs it (a LayeredPipeline)');
    if (r.nativeSize) lines.push(`  native size   ${r.nativeSize}x${r.nativeSize}`);
    lines.push(`  config        ${JSON.stringify(r.layered)}`);
    return lines.join('\n');
  }
  const c = r.config as ModelConfig;
  lines.push(
    `  native size   ${r.nativeSize}x${r.nativeSize}${guessed(r, 'nativeSize')}`,
    `  prediction    ${r.predictionType}${guessed(r, 'scheduler.predictionType')}`,
    `  dtype         ${r.dtype}`,
    `  parameters    ${millions(r.totalParameters ?? 0)}`,
  );
  for (const [name, s] of Object.entries(r.components ?? {})) {
    const dt = Object.entries(s.dtypes)
      .map(([d, n]) => (Object.keys(s.dtypes).length > 1 ? `${d} ${millions(n as number)}` : d))
      .join(', ');
    lines.push(
      `    ${name.padEnd(12)}${millions(s.parameters).padStart(8)} params  ${String(s.tensors).padStart(5)} tensors  ${mib(s.bytes).padStart(10)}  ${dt}`,
    );
  }
  const u = c.unet;
  lines.push(
    `  unet          channels ${u.channelMult.map((m) => m * u.modelChannels).join('/')}, ${u.numResBlocks} res blocks/level, attention ${u.attentionLevels.map((a) => (a ? 'y' : 'n')).join('')}, heads ${u.numHeads.join('/')} (mid ${u.midHeads})${guessed(r, 'unet.numHeads')}, context ${u.contextDim}, ${u.useLinearProjection ? 'linear' : 'conv'} projection${u.upcastAttention ? ', upcast attention' : ''}`,
    `  vae           channels ${c.vae.channels.join('/')}, latent ${c.vae.latentChannels}, scaling ${c.vae.scalingFactor}`,
    `  text encoder  ${c.textEncoder.kind === 'clip' ? 'CLIP' : 'OpenCLIP'}, hidden ${c.textEncoder.hidden}, ${c.textEncoder.layers} layers (runs ${c.textEncoder.defaultLayersToRun}), ${c.textEncoder.heads} heads${guessed(r, 'textEncoder.heads')}, MLP ${c.textEncoder.intermediate} ${c.textEncoder.activation}, vocab ${c.textEncoder.vocabSize}, ${c.textEncoder.maxPositions} positions, pad ${c.textEncoder.padToken}`,
    `  scheduler     ${c.scheduler.className ?? 'default'} ${c.scheduler.betaSchedule} ${c.scheduler.betaStart}..${c.scheduler.betaEnd}, ${c.scheduler.numTrainTimesteps} steps, ${c.scheduler.timestepSpacing} spacing, offset ${c.scheduler.stepsOffset}${guessed(r, 'scheduler')}`,
  );
  if (r.unusedTensors?.length)
    lines.push(
      `  unused        ${r.unusedTensors.length} tensors (${r.unusedTensors.slice(0, 4).join(', ')}${r.unusedTensors.length > 4 ? ', ...' : ''})`,
    );
  return lines.join('\n');
}
