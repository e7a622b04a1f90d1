// The bench suites' shared argument reader: values, integer ranges, sizes and the shared model-bench flags,
// with the "Expected … for <flag> but received …" messages every suite prints.
import test from 'ava';
import {
  ArgCursor,
  type ModelBenchOptions,
  modelBenchDefaults,
  parseModelBenchFlag,
  parseSize,
} from '../lib/cli/bench/args.js';

function parseAll(args: string[]): ModelBenchOptions {
  const o = modelBenchDefaults(3);
  const cursor = new ArgCursor(args);
  for (let a = cursor.next(); a !== undefined; a = cursor.next())
    if (!parseModelBenchFlag(o, a, cursor)) throw new Error(`unknown ${a}`);
  return o;
}

test('shared model-bench flags parse into the options', (t) => {
  const o = parseAll([
    '--json',
    '--threads',
    '4',
    '--dtype',
    'f32',
    '--cache',
    '/c',
    '--steps',
    '7',
    '--cpu-time',
    '--only',
    'a,,b',
    '--width-scale',
    '0.25',
  ]);
  t.like(o, { json: true, threads: 4, dtype: 'f32', cache: '/c', steps: 7, cpuTime: true, widthScale: 0.25 });
  t.deepEqual(o.only, ['a', 'b']);
  t.like(parseAll([]), { json: false, threads: 2, dtype: 'f16', steps: 3, cpuTime: false, widthScale: 1 });
  t.throws(() => parseAll(['--bogus']), { message: 'unknown --bogus' });
});

test('bad values name the flag, what was expected and what was received', (t) => {
  const cases: Array<[string[], string]> = [
    [['--threads'], 'Expected a value for --threads but received undefined'],
    [['--threads', '0'], 'Expected an integer in [1, 1024] for --threads but received "0"'],
    [['--threads', '1.5'], 'Expected an integer in [1, 1024] for --threads but received "1.5"'],
    [['--steps', '101'], 'Expected an integer in [1, 100] for --steps but received "101"'],
    [['--dtype', 'bf16'], 'Expected f16 or f32 for --dtype but received "bf16"'],
    [['--width-scale', '0'], 'Expected a number in (0, 1] for --width-scale but received "0"'],
    [['--width-scale', 'NaN'], 'Expected a number in (0, 1] for --width-scale but received "NaN"'],
  ];
  for (const [args, message] of cases) {
    const e = t.throws(() => parseAll(args), { message }, args.join(' '));
    t.is((e as Error & { code?: string }).code, 'ERR_INVALID_ARGUMENT');
  }
  const open = new ArgCursor(['--min-ms', '-1']);
  open.next();
  t.throws(() => open.int(0), { message: 'Expected an integer >= 0 for --min-ms but received "-1"' });
});

test('sizes: N or WxH, multiples of 8 in 64..4096', (t) => {
  t.deepEqual(parseSize('512', '--size', 'x'), { width: 512, height: 512 });
  t.deepEqual(parseSize('640x384', '--size', 'x'), { width: 640, height: 384 });
  for (const bad of ['65', '64x60', '4104', '0', 'x64', '512x', '-64', ''])
    t.throws(() => parseSize(bad, '--size', 'a size'), { message: `Expected a size for --size but received "${bad}"` });
});
