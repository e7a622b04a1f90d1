// The native thread pool and arena, driven through the coreTest hooks (native/addon/core_test_binding.cc).
import test from 'ava';
import { callNative, DiffusionError } from '../lib/errors.js';
import { loadDevBinding } from '../lib/native/load.js';

interface ParallelForResult {
  visits: Int32Array;
  workers: Int32Array;
  chunks: [number, number][];
  poolSize: number;
}
interface ArenaState {
  address?: bigint;
  mark?: number;
  inUse: number;
  peak: number;
  reserved: number;
}
type ArenaOp = ['alloc', number, number?] | ['mark'] | ['reset', number] | ['resetAll'] | ['release'];
interface CoreTest {
  hardwareThreads: number;
  parallelFor(n: number, threads: number, grain: number): ParallelForResult;
  runTasks(tasks: number, threads: number, spinMicros: number): ParallelForResult & { distinctWorkers: number };
  parallelThrow(
    n: number,
    threads: number,
    throwAt: number,
    kind: 'nd' | 'std' | 'int',
  ): { code: string; message: string; visitedBeforeError: number; completedAfter: number };
  parallelRethrow(n: number, threads: number, throwAt: number): void;
  nested(n: number, threads: number): number;
  arena(chunkBytes: number, ops: ArenaOp[]): { states: ArenaState[]; corrupted: string };
}

const core = loadDevBinding<{ coreTest: CoreTest }>().coreTest;

test('parallel_for visits every item exactly once in disjoint chunks of at least grain items', (t) => {
  for (const n of [0, 1, 7, 100, 1000]) {
    for (const threads of [1, 2, 3, 8]) {
      for (const grain of [1, 16, 5000]) {
        const r = core.parallelFor(n, threads, grain);
        const label = `n=${n} threads=${threads} grain=${grain}`;
        t.is(r.poolSize, threads, label);
        t.true(
          r.visits.every((v) => v === 1),
          label,
        );
        t.true(
          r.workers.every((w) => w >= 0 && w < threads),
          label,
        );
        const chunks = [...r.chunks].sort((a, b) => a[0] - b[0]);
        t.true(chunks.length <= threads, `${label}: ${chunks.length} chunks`);
        let next = 0;
        for (const [b, e] of chunks) {
          t.is(b, next, label);
          t.true(e > b, label);
          next = e;
        }
        t.is(next, n, label);
        // Every chunk but the last has at least `grain` items (or the whole range is one chunk).
        for (const [b, e] of chunks.slice(0, -1)) t.true(e - b >= Math.min(grain, n), label);
      }
    }
  }
});

test('threads = 0 means one per hardware thread', (t) => {
  t.is(core.parallelFor(10, 0, 1).poolSize, core.hardwareThreads);
});

test('run_tasks deals tasks dynamically to more than one worker', (t) => {
  const r = core.runTasks(64, 4, 1000);
  t.true(r.visits.every((v) => v === 1));
  t.is(r.poolSize, 4);
  t.true(r.distinctWorkers >= 2, `only ${r.distinctWorkers} worker(s) took tasks`);
});

test('an nd::Error thrown inside a task keeps its code; the pool keeps working', (t) => {
  for (const threads of [1, 2, 4]) {
    const r = core.parallelThrow(1000, threads, 517, 'nd');
    t.is(r.code, 'ERR_SHAPE_MISMATCH');
    t.is(r.message, 'task 517 failed');
    t.true(r.visitedBeforeError >= 1);
    t.is(r.completedAfter, 1000);
  }
});

test('other exceptions inside a task become ERR_INTERNAL', (t) => {
  const std = core.parallelThrow(100, 3, 99, 'std');
  t.is(std.code, 'ERR_INTERNAL');
  t.is(std.message, 'task 99 failed');
  t.is(std.completedAfter, 100);
  const other = core.parallelThrow(100, 3, 0, 'int');
  t.is(other.code, 'ERR_INTERNAL');
  t.is(other.completedAfter, 100);
});

test('a task error reaches JS as a DiffusionError with its code', (t) => {
  const err = t.throws(() => callNative(() => core.parallelRethrow(64, 4, 63)), { instanceOf: DiffusionError });
  t.is(err?.code, 'ERR_ABORTED');
  t.is(err?.message, 'stopped at item 63');
});

test('a parallel region started inside a task runs inline instead of deadlocking', (t) => {
  t.is(core.nested(32, 4), 32 * 32);
});

test('bad hook arguments are ERR_INVALID_ARGUMENT', (t) => {
  const err = t.throws(() => callNative(() => core.parallelFor(-1, 2, 1)), { instanceOf: DiffusionError });
  t.is(err?.code, 'ERR_INVALID_ARGUMENT');
  t.regex(err?.message ?? '', /^Expected an integer in \[0, \d+\] for n but received -1/);
});

test('arena allocations honour every power-of-two alignment', (t) => {
  const aligns = [1, 2, 4, 8, 16, 32, 64, 128, 256, 4096];
  const ops: ArenaOp[] = [];
  for (const a of aligns) ops.push(['alloc', 3, 1], ['alloc', 24, a]);
  const { states, corrupted } = core.arena(1 << 16, ops);
  t.is(corrupted, '');
  aligns.forEach((a, i) => {
    const addr = states[2 * i + 1].address as bigint;
    t.is(addr % BigInt(a), 0n, `align ${a}`);
  });
  // Default alignment is 64 bytes.
  const dflt = core.arena(4096, [
    ['alloc', 1, 1],
    ['alloc', 10],
  ]);
  t.is((dflt.states[1].address as bigint) % 64n, 0n);
});

test('arena in-use and peak accounting, reset to a mark reuses the same memory', (t) => {
  const { states, corrupted } = core.arena(1 << 16, [
    ['alloc', 100, 64], // 0
    ['mark'], // 1
    ['alloc', 256, 64], // 2
    ['alloc', 1000, 64], // 3
    ['reset', 0], // 4
    ['alloc', 256, 64], // 5: same address as op 2
    ['alloc', 64, 64], // 6
    ['resetAll'], // 7
    ['alloc', 100, 64], // 8: same address as op 0
  ]);
  t.is(corrupted, '', 'the block allocated before the mark survives the reset');
  // The chunk itself need not start on a 64-byte boundary, so the first block may carry padding.
  t.true(states[0].inUse >= 100 && states[0].inUse < 164);
  t.is(states[1].inUse, states[0].inUse);
  // From there on, in-use grows by exactly the distance between block ends (padding counts).
  const at = (i: number): number => Number(states[i].address as bigint);
  t.is(states[2].inUse - states[0].inUse, at(2) + 256 - (at(0) + 100));
  t.true(at(2) - (at(0) + 100) < 64);
  t.is(states[3].inUse - states[2].inUse, at(3) + 1000 - (at(2) + 256));
  t.is(states[3].peak, states[3].inUse);
  t.is(states[4].inUse, states[0].inUse);
  t.is(states[5].address, states[2].address);
  t.true(states[6].inUse < states[3].inUse);
  t.is(states[6].peak, states[3].inUse, 'peak is the high-water mark');
  t.is(states[7].inUse, 0);
  t.is(states[8].address, states[0].address);
  t.is(states[8].reserved, 1 << 16, 'no new chunk after reset');
});

test('arena grows past a chunk, reuses chunks after reset, and frees them on release', (t) => {
  const chunk = 1024;
  const { states, corrupted } = core.arena(chunk, [
    ['alloc', 600, 64], // 0: chunk 1
    ['alloc', 600, 64], // 1: does not fit, chunk 2
    ['alloc', 5000, 64], // 2: larger than a chunk: a chunk of its own
    ['alloc', 16, 16], // 3
    ['resetAll'], // 4
    ['alloc', 600, 64], // 5: chunk 1 again
    ['alloc', 600, 64], // 6: chunk 2 again
    ['release'], // 7
    ['alloc', 8, 8], // 8
  ]);
  t.is(corrupted, '');
  t.is(states[0].reserved, chunk);
  t.is(states[1].reserved, 2 * chunk);
  t.true(states[2].reserved >= 2 * chunk + 5000);
  t.is(states[5].address, states[0].address);
  t.is(states[6].address, states[1].address);
  t.is(states[6].reserved, states[3].reserved, 'no growth when the chunks are reused');
  t.is(states[7].reserved, 0);
  t.is(states[7].inUse, 0);
  t.is(states[8].reserved, chunk);
  // Live blocks never overlap, across chunks too.
  const a0 = states[0].address as bigint;
  const a1 = states[1].address as bigint;
  const a2 = states[2].address as bigint;
  t.true(a1 >= a0 + 600n || a1 + 600n <= a0);
  t.true(a2 >= a1 + 600n || a2 + 5000n <= a1);
});

test('a non-power-of-two alignment is refused with a typed error', (t) => {
  for (const align of [0, 3, 48]) {
    const err = t.throws(() => callNative(() => core.arena(1024, [['alloc', 8, align]])), {
      instanceOf: DiffusionError,
    });
    t.is(err?.code, 'ERR_INVALID_ARGUMENT');
  }
});
