// One compute pool per process (native/core/threadpool.h compute_pool): a pipeline's text encoder, U-Net and VAE
// share the pool of their `threads` value, so loading an SD pipeline with `threads: N` starts N - 1 worker
// threads (the libuv worker running a call is the N-th compute thread). Before the shared pool each model owned
// one: 3 × (N - 1). Counted in a child process so nothing else this test process did is in the numbers.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { fixture, repoRoot } from './helpers/fixtures.js';

interface Counts {
  before: number;
  afterLoad: number;
  afterGenerate: number;
  cores: number;
}

function count(threads: number): Counts {
  const out = execFileSync(
    process.execPath,
    [
      '--import=tsx',
      join(repoRoot, 'test', 'helpers', 'thread-count.ts'),
      join(repoRoot, 'lib', 'index.ts'),
      fixture('models/tiny-sd1'),
      String(threads),
    ],
    { encoding: 'utf8', cwd: repoRoot },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as Counts;
}

const linux = process.platform === 'linux';

(linux ? test : test.skip)('an SD pipeline with threads: 2 adds one compute worker (2 compute threads)', (t) => {
  const c = count(2);
  t.log(c);
  t.true(c.afterGenerate - c.before <= 2, `grew by ${c.afterGenerate - c.before}`);
  t.is(c.afterLoad - c.before, 1); // the pool's one worker; the calling libuv thread is the second
  t.is(c.afterGenerate, c.afterLoad); // generating starts no further threads
});

(linux ? test : test.skip)('threads: 0 on N cores gives N compute threads (N - 1 workers + the caller)', (t) => {
  const c = count(0);
  t.log(c);
  t.is(c.afterLoad - c.before, c.cores - 1);
  t.is(c.afterGenerate, c.afterLoad);
});
