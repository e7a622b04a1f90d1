// Locates and loads the example service (examples/server/main.ts) for the `serve` and `worker`
// commands. The service ships as TypeScript source beside the package (it is an example to read
// and adapt); it runs under tsx. When this process cannot import .ts files, it re-executes itself
// with `node --import tsx` (tsx is installed with the repository's dev dependencies).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DiffusionError } from '../errors.js';
import { packageRoot } from '../native/load.js';

export interface ExampleServer {
  runServe(flags: unknown): Promise<void>;
  runWorker(flags: unknown): Promise<void>;
}

export async function loadExampleServer(): Promise<ExampleServer | undefined> {
  const entry = join(packageRoot, 'examples', 'server', 'main.ts');
  if (!existsSync(entry)) {
    throw new DiffusionError('ERR_UNSUPPORTED', `The example service is not installed (looked for ${entry})`);
  }
  try {
    return (await import(pathToFileURL(entry).href)) as ExampleServer;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  }
  let tsx: string;
  try {
    tsx = createRequire(join(packageRoot, 'package.json')).resolve('tsx');
  } catch {
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      'The example service runs from TypeScript source: install tsx (npm install --save-dev tsx) or run under `node --import tsx`',
    );
  }
  // Re-run this command under tsx, from the TypeScript entry point when there is one (so the
  // service and the CLI share one copy of the library and its error classes); this process only
  // relays signals and the exit code.
  const sourceMain = join(packageRoot, 'lib', 'cli', 'main.ts');
  const script = existsSync(sourceMain) ? sourceMain : process.argv[1];
  const child = spawn(process.execPath, ['--import', pathToFileURL(tsx).href, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 1 : 0);
  });
  return undefined;
}
