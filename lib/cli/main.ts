#!/usr/bin/env node
// The `native-diffusion` command. Subcommands live one per file in ./commands/: each module exports
// `register(program: Command)`; this entry point loads every module there (sorted by name), so a
// new subcommand (generate as the default command, bench, serve, ...) is a new file and no shared
// list is edited. A module registering the default command passes `{ isDefault: true }` to
// program.command().
import { readdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { DiffusionError } from '../errors.js';
import { packageVersion } from '../native/load.js';

const here = dirname(fileURLToPath(import.meta.url));

export async function buildProgram(): Promise<Command> {
  const program = new Command('native-diffusion')
    .description('Text-to-image diffusion models (Stable Diffusion 1.x/2.x) on the CPU')
    .version(packageVersion)
    .showHelpAfterError();
  // .js under dist/, .ts when run from source with tsx
  const ext = extname(fileURLToPath(import.meta.url));
  const dir = join(here, 'commands');
  const modules = readdirSync(dir)
    .filter((f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`))
    .sort();
  for (const file of modules) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { register?: (p: Command) => void };
    if (typeof mod.register === 'function') mod.register(program);
  }
  return program;
}

async function main(): Promise<void> {
  try {
    const program = await buildProgram();
    // bare `native-diffusion`: the list of commands, not "missing required argument 'prompt'"
    if (process.argv.length <= 2) {
      program.outputHelp({ error: true });
      process.exitCode = 1;
      return;
    }
    await program.parseAsync(process.argv);
  } catch (err) {
    // Every failure is one line with a code and exit status 1, never a stack trace.
    const e = err as { message?: string; code?: string };
    const code = err instanceof DiffusionError ? err.code : typeof e?.code === 'string' ? e.code : 'ERR_INTERNAL';
    const message = (e?.message ?? String(err)).split('\n')[0];
    process.stderr.write(`error: ${message} (${code})\n`);
    if (process.env.ND_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
    process.exitCode = 1;
  }
}

await main();
