// The lib/ import graph points one way (docs/architecture.md, "TypeScript"): every module belongs to one layer of
// the table below and imports only from its own layer or lower ones; inside the components layer the folders form
// no cycle. Type-only imports count too: they are design dependencies even though they vanish at run time.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'ava';
import { repoRoot } from './helpers/fixtures.js';

const LIB = join(repoRoot, 'lib');

/** Layers, lowest first. A path ending in '/' is a folder; the longest matching entry decides. */
const LAYERS: ReadonlyArray<{ name: string; paths: readonly string[] }> = [
  // shared vocabulary: errors (and the abort error), the call queue, array helpers, the model description types
  { name: 'core', paths: ['errors.ts', 'call-queue.ts', 'arrays.ts', 'loading/types.ts'] },
  // typed wrappers over the addon, one per native class
  { name: 'native', paths: ['native/'] },
  // the pieces a pipeline is made of
  {
    name: 'components',
    paths: ['tokenizer/', 'text/', 'noise/', 'schedules/', 'samplers/', 'guidance/', 'loading/', 'image/'],
  },
  // generation options, family descriptions and the pipelines that run them
  {
    name: 'pipelines',
    paths: [
      'api.ts',
      'options.ts',
      'families.ts',
      'pipeline-base.ts',
      'pipeline.ts',
      'layered-pipeline.ts',
      'load-pipeline.ts',
      'estimate.ts',
    ],
  },
  // what users call: the package entry, the CLI (with its benchmarks), the quality bench it drives and the
  // HTTP service behind `serve`/`worker`
  { name: 'surface', paths: ['index.ts', 'cli/', 'bench/', 'server/'] },
];

function layerOf(file: string): number {
  let best = -1;
  let bestLength = -1;
  LAYERS.forEach((layer, i) => {
    for (const p of layer.paths) {
      const hit = p.endsWith('/') ? file.startsWith(p) : file === p;
      if (hit && p.length > bestLength) {
        best = i;
        bestLength = p.length;
      }
    }
  });
  return best;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of a module (static, re-exports, `import type`, dynamic with a literal), as lib/ paths. */
function importsOf(source: string, file: string): string[] {
  const specs = [
    ...source.matchAll(/\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g),
    ...source.matchAll(/\bimport\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g),
  ].map((m) => m[1]);
  return specs.map((s) => relative(LIB, resolve(dirname(join(LIB, file)), s)).replace(/\.js$/, '.ts'));
}

const modules = tsFiles(LIB).map((path) => {
  const file = relative(LIB, path);
  return { file, imports: importsOf(readFileSync(path, 'utf8'), file) };
});

test('the import parser sees static, type-only, re-export, side-effect and dynamic imports', (t) => {
  const src = [
    "import { a } from './x.js';",
    "import type {\n  B,\n  C,\n} from '../y/z.js';",
    "export { d } from './w.js';",
    "import './side.js';",
    "const m = () => import('./lazy.js');",
    "import { readFileSync } from 'node:fs';",
  ].join('\n');
  t.deepEqual(importsOf(src, 'guidance/step.ts').sort(), [
    'guidance/lazy.ts',
    'guidance/side.ts',
    'guidance/w.ts',
    'guidance/x.ts',
    'y/z.ts',
  ]);
});

test('every module under lib/ has a layer', (t) => {
  t.true(modules.length > 50, `found ${modules.length} modules`);
  const unplaced = modules.filter((m) => layerOf(m.file) < 0).map((m) => m.file);
  t.deepEqual(unplaced, [], 'add new modules to the layer table in test/layering.test.ts');
});

/** Each import that leaves lib/ or runs to a higher layer, described. */
function upwardImports(list: ReadonlyArray<{ file: string; imports: string[] }>): string[] {
  const upward: string[] = [];
  for (const m of list) {
    const from = layerOf(m.file);
    for (const target of m.imports) {
      if (target.startsWith('..')) {
        upward.push(`${m.file} imports ${target}, outside lib/`);
        continue;
      }
      const to = layerOf(target);
      if (to > from) upward.push(`${m.file} (${LAYERS[from].name}) imports ${target} (${LAYERS[to].name})`);
    }
  }
  return upward;
}

test('no import runs from a lower layer to a higher one', (t) => {
  t.deepEqual(upwardImports(modules), []);
});

test('the check reports upward imports', (t) => {
  // imports issue 11 found: the U-Net wrapper reaching into guidance, a native wrapper into the tokenizer
  const found = upwardImports([
    { file: 'native/unet.ts', imports: ['guidance/scfg.ts', 'errors.ts'] },
    { file: 'native/layered.ts', imports: ['tokenizer/clip-bpe.ts'] },
    { file: 'guidance/step.ts', imports: ['options.ts', 'native/unet.ts'] },
    { file: 'pipeline.ts', imports: ['../examples/server/app.ts'] },
  ]);
  t.deepEqual(found, [
    'native/unet.ts (native) imports guidance/scfg.ts (components)',
    'native/layered.ts (native) imports tokenizer/clip-bpe.ts (components)',
    'guidance/step.ts (components) imports options.ts (pipelines)',
    'pipeline.ts imports ../examples/server/app.ts, outside lib/',
  ]);
});

test('the component folders import each other without a cycle', (t) => {
  const components = LAYERS.findIndex((l) => l.name === 'components');
  const folder = (file: string) => file.split('/')[0];
  const edges = new Map<string, Set<string>>();
  for (const m of modules) {
    if (layerOf(m.file) !== components) continue;
    for (const target of m.imports) {
      if (layerOf(target) !== components || folder(target) === folder(m.file)) continue;
      if (!edges.has(folder(m.file))) edges.set(folder(m.file), new Set());
      edges.get(folder(m.file))!.add(folder(target));
    }
  }
  // depth-first search for a back edge
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (node: string, path: string[]) => {
    state.set(node, 'open');
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'open') cycles.push([...path, node, next].join(' → '));
      else if (!state.has(next)) visit(next, [...path, node]);
    }
    state.set(node, 'done');
  };
  for (const node of edges.keys()) if (!state.has(node)) visit(node, []);
  t.deepEqual(cycles, []);
});
