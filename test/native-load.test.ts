// What a user sees when no binary can load: a copy of the package (dist/, package.json,
// tools/install.cjs) without build/, prebuilds/ or a platform package, in a folder with no
// node_modules above it. The install script explains and exits 0; loading throws ERR_NATIVE_LOAD
// listing each place tried and the exact command to run.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { repoRoot } from './helpers/fixtures.js';

const host = `${process.platform}-${process.arch}`;
const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version as string;

function packageCopy(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nd-noload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pkg = join(dir, 'native-diffusion');
  mkdirSync(join(pkg, 'tools'), { recursive: true });
  cpSync(join(repoRoot, 'dist'), join(pkg, 'dist'), { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(repoRoot, 'binding.gyp'), join(pkg, 'binding.gyp'));
  cpSync(join(repoRoot, 'tools', 'install.cjs'), join(pkg, 'tools', 'install.cjs'));
  return pkg;
}

test('with no binary anywhere, the install script says what to install and loading lists the solutions', (t) => {
  if (!existsSync(join(repoRoot, 'dist', 'index.js'))) t.fail('dist/ is missing: run npm run build:ts first');
  const pkg = packageCopy(t);

  const install = spawnSync(process.execPath, ['tools/install.cjs'], { cwd: pkg, encoding: 'utf8' });
  t.is(install.status, 0, install.stderr);
  t.regex(install.stderr, /cannot be built here \(node-addon-api is missing\)/);
  t.regex(install.stderr, new RegExp(`npm install @native-diffusion/${host}`));
  t.false(existsSync(join(pkg, 'build')), 'nothing was built');

  const script = `import('./dist/index.js').then((m) => m.buildInfo()).then(
    () => process.exit(3),
    (e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); });`;
  const run = spawnSync(process.execPath, ['-e', script], {
    cwd: pkg,
    encoding: 'utf8',
    env: { ...process.env, ND_DEVICE: 'cpu' },
  });
  t.is(run.status, 0, run.stderr);
  const err = JSON.parse(run.stdout) as { code: string; message: string };
  t.is(err.code, 'ERR_NATIVE_LOAD');
  t.regex(err.message, new RegExp(`Could not load the native-diffusion binary for ${host}`));
  t.regex(err.message, /build\/Release: not built/);
  t.regex(err.message, new RegExp(`prebuilds/${host}: absent`));
  t.regex(err.message, /Possible solutions:/);
  if (host === 'linux-x64') {
    t.regex(err.message, /@native-diffusion\/linux-x64: not installed/);
    t.true(err.message.includes(`npm install @native-diffusion/linux-x64@${version}`), err.message);
  }
  t.true(err.message.includes('npm rebuild native-diffusion --build-from-source'), err.message);
});

test('a binary that exists but does not load is reported with its error', (t) => {
  const pkg = packageCopy(t);
  mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(pkg, 'build', 'Release', 'native_diffusion.node')); // not a shared object
  const script = `import('./dist/index.js').then((m) => m.buildInfo()).then(
    () => process.exit(3),
    (e) => { console.log(e.message); });`;
  const run = spawnSync(process.execPath, ['-e', script], {
    cwd: pkg,
    encoding: 'utf8',
    env: { ...process.env, ND_DEVICE: 'cpu' },
  });
  t.is(run.status, 0, run.stderr);
  t.regex(
    run.stdout,
    /build\/Release \(.*native_diffusion\.node\): .*(invalid ELF header|not a valid Win32|slice is not valid)/i,
  );
});
