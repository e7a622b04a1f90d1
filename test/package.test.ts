// The published packages. (1) The packed file list against an allow-list: what users run and
// nothing else. (2) `npm run pack:all` for this platform, then the main tarball and the platform
// tarball installed into an empty project with no compiler, Python or make on PATH: the platform
// package's binary is used (nothing compiled), the CLI generates with the embedded model, runs
// `inspect`, and `serve` answers /v1/images/generations with an image.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { repoRoot } from './helpers/fixtures.js';

/** The npm CLI script, so it can run under `node` with a PATH that has no compilers. */
function npmCli(): string {
  const npmBin = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
  const cli = join(dirname(realpathSync(npmBin)), 'npm-cli.js');
  if (!existsSync(cli)) throw new Error(`npm-cli.js not found next to ${npmBin}`);
  return cli;
}

// Every path the main tarball may hold. Not allowed: native test/fuzz/bench sources, CUDA sources
// (no cmake-js build ships), source maps (their lib/*.ts sources do not ship), the bench suites,
// evaluation-only data.
const allowed: RegExp[] = [
  /^package\.json$/,
  /^README\.md$/,
  /^binding\.gyp$/,
  /^tools\/(sources|install)\.cjs$/,
  /^dist\/(?!bench\/|cli\/bench|cli\/commands\/bench\.)[\w/.-]+\.(js|d\.ts|mjs)$/,
  /^dist\/server\/public\/[\w.-]+\.(html|js|css|svg|png|ico)$/,
  /^native\/(?!backend\/cuda\/)(addon|backend|core|cpu|models|nn)\/[\w/.-]+\.(cc|h|inc)$/,
  /^models\/(README\.md|default\/(README\.md|config\.json|model\.safetensors))$/,
  /^models\/tokenizers\/[\w/.-]+\.(json|txt|md)$/,
  /^prebuilds\/(linux-x64|linux-arm64|win32-x64)\/native_diffusion\.node$/,
];

function packedFiles(): string[] {
  const out = execFileSync(process.execPath, [npmCli(), 'pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: repoRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return (JSON.parse(out.slice(out.indexOf('['))) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
}

test('the packed file list matches the allow-list', (t) => {
  if (!existsSync(join(repoRoot, 'dist', 'index.js'))) t.fail('dist/ is missing: run npm run build:ts first');
  const files = packedFiles();
  const extra = files.filter((f) => !allowed.some((re) => re.test(f)));
  t.deepEqual(extra, [], 'files outside the allow-list');
  for (const need of ['dist/index.js', 'dist/cli/main.js', 'dist/server/main.js', 'binding.gyp', 'tools/install.cjs'])
    t.true(files.includes(need), need);
  t.true(files.includes('models/default/model.safetensors'), 'the embedded model ships');
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  t.falsy(pkg.dependencies['node-addon-api'], 'node-addon-api is needed only to build');
  t.truthy(pkg.devDependencies['node-addon-api']);
});

const host = `${process.platform}-${process.arch}`;
const haveBuild = existsSync(join(repoRoot, 'build', 'config.gypi'));

/** Waits for `listening on <url>` on the child's stdout. */
function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d) => {
      err += d;
    });
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
}

(haveBuild && host === 'linux-x64' ? test : test.skip)(
  'pack:all tarballs install with no compiler on PATH; generate, inspect and serve work from the installed package',
  async (t) => {
    const work = mkdtempSync(join(tmpdir(), 'nd-package-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const cli = npmCli();
    const packs = join(work, 'packs');
    execFileSync(process.execPath, ['tools/pack-all.mjs', '--out', packs, '--targets', host], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;
    const mainTgz = join(packs, `native-diffusion-${version}.tgz`);
    const platformTgz = join(packs, `native-diffusion-${host}-${version}.tgz`);
    t.true(existsSync(mainTgz) && existsSync(platformTgz), 'pack:all wrote both tarballs');

    // A bin folder with node and sh only: a fallback to node-gyp would fail for want of make/g++/python.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const env: NodeJS.ProcessEnv = {
      HOME: process.env.HOME,
      PATH: bin,
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    };
    for (const [k, v] of Object.entries(process.env)) if (k.startsWith('npm_config_cache') && v) env[k] = v;

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const t0 = Date.now();
    const install = spawnSync(
      process.execPath,
      [cli, 'install', '--prefer-offline', '--foreground-scripts', mainTgz, platformTgz],
      { cwd: app, env, encoding: 'utf8' },
    );
    const log = install.stdout + install.stderr;
    t.is(install.status, 0, log);
    t.log(`install from tarballs: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    t.notRegex(log, /EBADENGINE/, 'every installed package accepts this Node');
    t.regex(log, /native-diffusion: using .*@native-diffusion/, 'the install script found the platform package');

    const installed = join(app, 'node_modules', 'native-diffusion');
    t.false(existsSync(join(installed, 'build')), 'nothing was compiled during install');
    t.false(existsSync(join(installed, 'prebuilds')), 'the main package carries no binary');
    t.true(existsSync(join(app, 'node_modules', '@native-diffusion', host, 'native_diffusion.node')));
    t.false(existsSync(join(app, 'node_modules', 'node-addon-api')), 'node-addon-api is not installed for users');

    const nd = join(app, 'node_modules', '.bin', 'native-diffusion');
    const run = (args: string[]) => execFileSync(nd, args, { cwd: app, env, encoding: 'utf8', stdio: 'pipe' });
    run(['a red circle', '--size', '32', '--steps', '2', '--seed', '1', '-o', 'out.png', '-q']);
    const png = readFileSync(join(app, 'out.png'));
    t.is(png.subarray(1, 4).toString(), 'PNG');

    const report = JSON.parse(run(['inspect', join(installed, 'models', 'default'), '--json']));
    t.truthy(report, 'inspect prints a report');

    const child = spawn(nd, ['serve', '--port', '0', '--threads', '1'], { cwd: app, env, stdio: 'pipe' });
    t.teardown(() => child.kill('SIGKILL'));
    const url = await listening(child);
    const res = await fetch(`${url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a blue square', size: '64x64', steps: 2, seed: 3, response_format: 'b64_json' }),
    });
    const text = await res.text();
    t.is(res.status, 200, text);
    const body = JSON.parse(text) as { data: { b64_json: string }[] };
    t.is(Buffer.from(body.data[0].b64_json, 'base64').subarray(1, 4).toString(), 'PNG');
    child.kill('SIGTERM');
  },
);
