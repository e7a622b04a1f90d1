// Every CLI failure is one line `error: <message> (<code>)` with exit status 1, found before any
// generation (bad flags, an output path that cannot be written), never a stack trace.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { repoRoot } from './helpers/fixtures.js';

const run = promisify(execFile);
// a folder whose name looks like an output file
const FOLDER = join(mkdtempSync(join(tmpdir(), 'nd-cli-')), 'folder.png');
mkdirSync(FOLDER);

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { cwd: repoRoot, timeout: 60_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

const cases: [string[], RegExp][] = [
  [['x', '-o', '/nonexistent-folder/a.png'], /for --output but received "\/nonexistent-folder\/a.png"/],
  [['x', '-o', 'nowhere.png/'], /Expected a file path, not a folder for --output/],
  [['x', '-o', FOLDER], /Expected a file path, not a folder for --output/],
  [['x', '-o', '/proc/a.png'], /Expected a writable path .* for --output/],
  [['x', '-o', 'out.jpg'], /Expected a \.png file name .* for --output but received "out.jpg"/],
  [['x', '--vae-tiling', 'maybe'], /Expected one of auto, true, false, on, off for --vae-tiling but received "maybe"/],
  [['x', '--prediction', 'bogus'], /Expected one of epsilon, v_prediction for --prediction but received "bogus"/],
  [['x', '--config', '{bad'], /Expected a JSON object for --config but received "\{bad"/],
  [['x', '--config', '[1,2]'], /Expected a JSON object for --config but received "\[1,2\]"/],
  [
    ['x', '--size', '700', '--steps', '1', '-o', '/tmp/nd-cli-errors.png'],
    /for width \(from --size 700\) but received 700/,
  ],
  [
    ['x', '--sampler', 'euler', '-o', '/tmp/nd-cli-errors.png'],
    /Expected one of ddim \(the samplers this model supports\) for sampler/,
  ],
  [
    ['x', '--seed', '-5', '-o', '/tmp/nd-cli-errors.png'],
    /Expected an integer in \[0, 2\^64\) for seed but received -5/,
  ],
  [['inspect', 'models/default', '--config', '{bad'], /Expected a JSON object for --config/],
  [['serve', '--config', '{bad'], /Expected a JSON object for --config/],
  [['serve', '--port', '99999'], /Expected an integer in \[0, 65535\] for --port but received "99999"/],
  [['worker', '--queue', 'redis://127.0.0.1:1', '--config', '[]'], /Expected a JSON object for --config/],
];

for (const [args, message] of cases) {
  test(`native-diffusion ${args.join(' ')}`, async (t) => {
    const r = await cli(args);
    t.is(r.code, 1);
    t.regex(r.stderr, message);
    t.regex(r.stderr, /^error: .* \(ERR_[A-Z_]+\)\n$/);
    t.false(existsSync('/tmp/nd-cli-errors.png'));
  });
}

test('bare native-diffusion lists the commands', async (t) => {
  const r = await cli([]);
  t.is(r.code, 1);
  t.regex(r.stderr, /Commands:/);
  for (const command of ['generate', 'inspect', 'serve', 'worker', 'bench']) t.regex(r.stderr, new RegExp(command));
  t.notRegex(r.stderr, /missing required argument/);
});

test('inspect of the embedded layered model: runnable, no vocabulary dump', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'inspect', 'models/default'], {
    cwd: repoRoot,
  });
  t.regex(stdout, /supported\s+yes/);
  t.notRegex(stdout, /not implemented/);
  t.true(stdout.split('\n').every((line) => line.length < 2000));
});
