// The published package: `npm pack`, install the tarball into an empty project with no compiler on
// PATH, and check that the prebuilt binary is used (nothing compiled) and that the API loads.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { repoRoot } from './helpers/fixtures.js';

const prebuildDir = join(repoRoot, 'prebuilds', `${process.platform}-${process.arch}`);
const hasPrebuild = existsSync(prebuildDir) && readdirSync(prebuildDir).some((f) => f.endsWith('.node'));

/** The npm CLI script, so it can run under `node` with a PATH that has no compilers. */
function npmCli(): string {
  const npmBin = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
  const cli = join(dirname(realpathSync(npmBin)), 'npm-cli.js');
  if (!existsSync(cli)) throw new Error(`npm-cli.js not found next to ${npmBin}`);
  return cli;
}

if (!hasPrebuild) {
  test.skip(`installed package uses the prebuilt binary — skipped: no ${prebuildDir} (run npm run prebuildify)`, () => {});
} else {
  test('npm pack + install uses the prebuilt binary without compiling, and the API works', (t) => {
    if (!existsSync(join(repoRoot, 'dist', 'index.js'))) t.fail('dist/ is missing: run npm run build:ts first');
    const work = mkdtempSync(join(tmpdir(), 'nd-package-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const cli = npmCli();

    // A bin folder with node and sh only: a fallback to node-gyp would fail for want of make/g++/python.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const env: NodeJS.ProcessEnv = {
      HOME: process.env.HOME,
      PATH: bin,
      npm_config_build_from_source: 'false',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    };
    for (const [k, v] of Object.entries(process.env)) if (k.startsWith('npm_config_cache') && v) env[k] = v;

    const packOut = execFileSync(process.execPath, [cli, 'pack', '--json', '--pack-destination', work], {
      cwd: repoRoot,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const packed = JSON.parse(packOut.slice(packOut.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const files = packed[0].files.map((f) => f.path);
    t.true(
      files.some((f) => f.startsWith('prebuilds/') && f.endsWith('.node')),
      'the tarball carries the prebuilt binary',
    );
    t.true(files.includes('dist/index.js'));
    for (const f of files) t.false(/^(build|build-cuda|build-native|node_modules|test)\//.test(f), `unexpected ${f}`);

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    execFileSync(
      process.execPath,
      [cli, 'install', '--prefer-offline', '--no-package-lock', join(work, packed[0].filename)],
      {
        cwd: app,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );

    const installed = join(app, 'node_modules', 'native-diffusion');
    t.false(existsSync(join(installed, 'build')), 'nothing was compiled during install');
    const appRequire = createRequire(join(app, 'index.js'));
    const resolved = (appRequire('node-gyp-build') as { path(dir: string): string }).path(installed);
    t.true(resolved.startsWith(join(installed, 'prebuilds')), `node-gyp-build chose ${resolved}`);

    const script = "import { buildInfo } from 'native-diffusion'; console.log(JSON.stringify(buildInfo()));";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
      env,
      encoding: 'utf8',
    });
    const info = JSON.parse(out) as { hardwareThreads: number; cuda: boolean; bindings: string[] };
    t.true(info.hardwareThreads >= 1);
    t.false(info.cuda);
    t.true(info.bindings.includes('safetensors'));
  });
}
