import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs a measuring child (`<name>-child.ts|js` beside `parentUrl`, with the parent's loader flags, e.g. tsx)
 * on one JSON task in a fresh process and resolves with the one message it sends back.
 */
export function runBenchChild<T>(parentUrl: string, name: string, task: unknown, label: string): Promise<T> {
  const path = fileURLToPath(parentUrl).replace(/[^/\\]+\.(ts|js)$/, `${name}-child.$1`);
  return new Promise((resolve, reject) => {
    const child = fork(path, [JSON.stringify(task)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    let result: T | undefined;
    child.on('message', (m) => {
      result = m as T;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (result !== undefined && code === 0) resolve(result);
      else reject(new Error(`${label} failed (exit ${code ?? signal})`));
    });
  });
}
