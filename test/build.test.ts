import test from 'ava';
import { buildInfo, DiffusionError } from '../lib/index.js';

test('the addon loads and reports its build', (t) => {
  const info = buildInfo();
  t.true(info.hardwareThreads >= 1);
  t.is(typeof info.cuda, 'boolean');
});

test('DiffusionError carries a code', (t) => {
  const e = new DiffusionError('ERR_IO', 'x');
  t.is(e.code, 'ERR_IO');
  t.true(e instanceof Error);
});
