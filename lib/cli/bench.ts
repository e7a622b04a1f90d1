#!/usr/bin/env node
// `npm run bench -- <suite> [options]`: dispatches to one benchmark suite module. Suites live in
// lib/cli/bench/<name>.ts and export `run(args: string[]): Promise<void>`; add one to `suites`.
import { invalid } from '../errors.js';

type Suite = { run(args: string[]): Promise<void>; summary: string };

const suites: Record<string, () => Promise<Suite>> = {
  guidance: () => import('./bench/guidance.js'),
  kernels: () => import('./bench/kernels.js'),
  quality: () => import('./bench/quality.js'),
  sd15: () => import('./bench/sd15.js'),
};

function usage(): string {
  return (
    `Usage: native-diffusion bench <suite> [options]\nSuites: ${Object.keys(suites).join(', ')}\n` +
    'Run a suite with --help for its options.'
  );
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const load = suites[name];
  if (!load) invalid(`one of ${Object.keys(suites).join(', ')}`, 'suite', name);
  const suite = await load();
  await suite.run(rest);
}

const invokedDirectly = process.argv[1] !== undefined && /bench\.(js|ts)$/.test(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    const e = err as Error & { code?: string };
    process.stderr.write(`${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    process.exitCode = 1;
  });
}
