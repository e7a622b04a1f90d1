// Command-line flag parsing shared by the commands and the service's entry points: every bad value
// is a DiffusionError with the library's message form, found before any model is loaded.
import { closeSync, existsSync, openSync, statSync, unlinkSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { DiffusionError, describe } from '../errors.js';
import type { PredictionType } from '../loading/types.js';

function bad(what: string, flag: string, value: unknown): never {
  throw new DiffusionError('ERR_INVALID_ARGUMENT', `Expected ${what} for ${flag} but received ${describe(value)}`);
}

/** A JSON object (a partial model config); undefined when the flag is absent. */
export function jsonObjectFlag(value: string | undefined, flag: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    bad('a JSON object', flag, value);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) bad('a JSON object', flag, value);
  return parsed as Record<string, unknown>;
}

export function predictionFlag(value: string | undefined, flag = '--prediction'): PredictionType | undefined {
  if (value === undefined) return undefined;
  if (value !== 'epsilon' && value !== 'v_prediction') bad('one of epsilon, v_prediction', flag, value);
  return value;
}

export function vaeTilingFlag(value: string | undefined, flag = '--vae-tiling'): boolean | 'auto' | undefined {
  if (value === undefined) return undefined;
  if (value === 'auto') return 'auto';
  if (value === 'true' || value === 'on') return true;
  if (value === 'false' || value === 'off') return false;
  bad('one of auto, true, false, on, off', flag, value);
}

/** An integer in [min, max] written in decimal ("12px" and "" are errors). */
export function intFlag(value: string, flag: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
    bad(max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, flag, value);
  return n;
}

export function portFlag(value: string, flag = '--port'): number {
  return intFlag(value, flag, 0, 65535);
}

/**
 * Checks before a generation that `path` can be written as a PNG: the extension names the format
 * (only .png is written), the folder exists, the path is not a folder, and a file can be created
 * there (tried, then removed when it was not there before).
 */
export function checkOutputPath(path: string, flag = '--output'): string {
  if (/[/\\]$/.test(path)) bad('a file path, not a folder', flag, path);
  const out = resolve(path);
  if (extname(out).toLowerCase() !== '.png') bad('a .png file name (PNG is the format written)', flag, path);
  const dir = dirname(out);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) bad('a path in an existing folder', flag, path);
  if (existsSync(out) && statSync(out).isDirectory()) bad('a file path, not a folder', flag, path);
  const existed = existsSync(out);
  try {
    closeSync(openSync(out, 'a'));
    if (!existed) unlinkSync(out);
  } catch (err) {
    bad(`a writable path (${(err as NodeJS.ErrnoException).code ?? 'not writable'})`, flag, path);
  }
  return out;
}

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A byte count: 1073741824, 1024M, 8G, 8GiB, 0.5T. */
export function bytesFlag(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(value);
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2].toUpperCase()]) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) bad('a size in bytes such as 8G, 512M or 1073741824', flag, value);
  return bytes;
}
