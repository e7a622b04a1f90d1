#!/usr/bin/env node
// `npm run pack:all -- --out DIR [--targets linux-x64,linux-arm64,win32-x64]`: the tarballs to
// publish, sharp-style. One per platform (@native-diffusion/<platform>: the addon only, with the
// os/cpu/libc fields npm matches on) and the main package, which lists every platform package as
// an optional dependency at this exact version and carries no binary itself. Default targets: this
// machine's plus each cross target whose compiler is installed (tools/cross-build.mjs).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canCrossBuild, crossTargets } from './cross-build.mjs';
import { hostTarget, prebuild } from './prebuild.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npmCli = process.env.npm_execpath || 'npm';

function npm(args, cwd) {
  const [cmd, pre] = npmCli.endsWith('.js') ? [process.execPath, [npmCli]] : [npmCli, []];
  return execFileSync(cmd, [...pre, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function packJson(args, cwd) {
  const out = npm(['pack', '--json', '--ignore-scripts', ...args], cwd);
  return JSON.parse(out.slice(out.indexOf('[')))[0];
}

export async function packAll({ out, targets }) {
  if (!existsSync(join(root, 'dist', 'native', 'load.js'))) npm(['run', 'build:ts'], root);
  const { platformPackages, platformPackageName } = await import(join(root, 'dist', 'native', 'load.js'));
  const main = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  for (const t of targets)
    if (!platformPackages[t]) throw new Error(`Expected one of ${Object.keys(platformPackages)} but received ${t}`);
  mkdirSync(out, { recursive: true });
  const stage = join(out, '.stage');
  rmSync(stage, { recursive: true, force: true });
  const binaries = await prebuild(targets);
  const written = [];

  for (const target of targets) {
    const p = platformPackages[target];
    const dir = join(stage, target);
    mkdirSync(dir, { recursive: true });
    copyFileSync(binaries[target], join(dir, 'native_diffusion.node'));
    const name = platformPackageName(target);
    const pkg = {
      name,
      version: main.version,
      description: `Prebuilt native-diffusion addon for ${target}${p.libc ? ` (${p.libc})` : ''}`,
      license: main.license,
      os: [p.os],
      cpu: [p.cpu],
      ...(p.libc ? { libc: [p.libc] } : {}),
      engines: main.engines,
      files: ['native_diffusion.node'],
    };
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
    writeFileSync(
      join(dir, 'README.md'),
      `# ${name}\n\nThe prebuilt ${target} binary of [native-diffusion](https://www.npmjs.com/package/native-diffusion). Install \`native-diffusion\`, not this package: npm picks the matching platform package as an optional dependency.\n`,
    );
    written.push(packJson(['--pack-destination', resolve(out)], dir));
  }

  // The main package: the files `npm pack` would take, less the bundled prebuilds.
  const listed = packJson(['--dry-run'], root).files.map((f) => f.path);
  const dir = join(stage, 'main');
  for (const f of listed) {
    if (f.startsWith('prebuilds/')) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(root, f), join(dir, f));
  }
  const pkg = { ...main, scripts: { ...main.scripts } };
  pkg.optionalDependencies = Object.fromEntries(
    Object.keys(platformPackages).map((t) => [platformPackageName(t), main.version]),
  );
  delete pkg.scripts.prepack; // the stage has no sources to build from: binaries are in the platform packages
  delete pkg.scripts.prepare;
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  written.push(packJson(['--pack-destination', resolve(out)], dir));
  rmSync(stage, { recursive: true, force: true });

  for (const w of written) {
    const file = join(out, w.filename);
    console.log(`${w.filename}\t${(statSync(file).size / 1e6).toFixed(2)} MB packed\t${w.entryCount} files`);
  }
  return written.map((w) => ({
    name: w.name,
    file: join(resolve(out), w.filename),
    files: w.files.map((f) => f.path),
  }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const arg = (n) => (args.indexOf(n) >= 0 ? args[args.indexOf(n) + 1] : undefined);
  const out = arg('--out') ?? join(root, 'packages');
  const targets = arg('--targets')?.split(',') ?? [
    hostTarget,
    ...Object.keys(crossTargets).filter((t) => t !== hostTarget && canCrossBuild(t)),
  ];
  packAll({ out, targets }).catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
}
