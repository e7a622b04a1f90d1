import { homedir } from 'node:os';
import { join } from 'node:path';
import { invalid } from '../../errors.js';

/** Walks a bench suite's argument list; values are read through it so every suite reports bad input alike. */
export class ArgCursor {
  #i = -1;
  constructor(private readonly args: readonly string[]) {}

  /** The next flag, or undefined at the end. */
  next(): string | undefined {
    this.#i++;
    return this.args[this.#i];
  }

  get flag(): string {
    return this.args[this.#i] ?? '';
  }

  value(): string {
    const flag = this.flag;
    const v = this.args[++this.#i];
    if (v === undefined) invalid('a value', flag, v);
    return v;
  }

  int(min: number, max = Number.MAX_SAFE_INTEGER): number {
    const flag = this.flag;
    const raw = this.value();
    const n = Number(raw);
    const expected = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    if (!Number.isInteger(n) || n < min || n > max) invalid(expected, flag, raw);
    return n;
  }

  list(): string[] {
    return this.value().split(',').filter(Boolean);
  }
}

/** Options shared by the suites that generate a random SD 1.5 checkpoint (sd15, guidance). */
export interface ModelBenchOptions {
  json: boolean;
  threads: number;
  dtype: 'f16' | 'f32';
  cache: string;
  steps: number;
  cpuTime: boolean;
  only: string[];
  /** narrows the generated model (tests); 1 = the real SD 1.5 architecture */
  widthScale: number;
}

export function modelBenchDefaults(steps: number): ModelBenchOptions {
  return {
    json: false,
    threads: 2,
    dtype: 'f16',
    cache: process.env.ND_BENCH_CACHE ?? join(homedir(), '.cache', 'native-diffusion', 'bench'),
    steps,
    cpuTime: false,
    only: [],
    widthScale: 1,
  };
}

const MODEL_BENCH_FLAGS = ['--json', '--threads', '--dtype', '--cache', '--steps', '--cpu-time', '--only'];

/** Applies one of the shared flags; false when `flag` is not one of them. */
export function parseModelBenchFlag(o: ModelBenchOptions, flag: string, cursor: ArgCursor): boolean {
  if (flag === '--json') o.json = true;
  else if (flag === '--threads') o.threads = cursor.int(1, 1024);
  else if (flag === '--dtype') {
    const d = cursor.value();
    if (d !== 'f16' && d !== 'f32') invalid('f16 or f32', flag, d);
    o.dtype = d;
  } else if (flag === '--cache') o.cache = cursor.value();
  else if (flag === '--steps') o.steps = cursor.int(1, 100);
  else if (flag === '--cpu-time') o.cpuTime = true;
  else if (flag === '--only') o.only = cursor.list();
  else if (flag === '--width-scale') {
    const raw = cursor.value();
    o.widthScale = Number(raw);
    if (!(o.widthScale > 0 && o.widthScale <= 1)) invalid('a number in (0, 1]', flag, raw);
  } else return false;
  return true;
}

/**
 * Parses a model-bench suite's arguments into `o`: the shared flags, plus the suite's own through `own`
 * (returns false for a flag it does not know; `ownFlags` names them in the unknown-option message).
 * Undefined for --help.
 */
export function parseModelBenchArgs<T extends ModelBenchOptions>(
  args: readonly string[],
  o: T,
  ownFlags: readonly string[],
  own: (flag: string, cursor: ArgCursor) => boolean,
): T | undefined {
  const cursor = new ArgCursor(args);
  for (let a = cursor.next(); a !== undefined; a = cursor.next()) {
    if (a === '--help' || a === '-h') return undefined;
    if (!own(a, cursor) && !parseModelBenchFlag(o, a, cursor))
      invalid(`${[...MODEL_BENCH_FLAGS, ...ownFlags].join(', ')} or --width-scale`, 'option', a);
  }
  return o;
}

/** "512" or "640x384": multiples of 8 in 64..4096. */
export function parseSize(raw: string, flag: string, expected: string): { width: number; height: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(raw);
  const width = Number(m?.[1]);
  const height = Number(m?.[2] ?? m?.[1]);
  if (!m || width % 8 || height % 8 || width < 64 || height < 64 || width > 4096 || height > 4096)
    invalid(expected, flag, raw);
  return { width, height };
}
