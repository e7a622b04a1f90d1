// Retry-After follows the size of the work ahead (issue 17: one 512² job in the history made every small
// job wait 26 s): pixel-steps ahead × the recent ms per pixel-step, over the parallel slots.
import test from 'ava';
import { jobWork, retryAfterSeconds } from '../lib/server/jobs.js';

const model = { nativeWidth: 64, nativeHeight: 64, defaultSteps: 20 };

test('jobWork: images × steps × pixels, with the model defaults', (t) => {
  t.is(jobWork({ n: 1 }, model), 20 * 64 * 64);
  t.is(jobWork({ n: 2, width: 512, height: 256, steps: 4 }, model), 2 * 4 * 512 * 256);
});

test('retryAfterSeconds: scales with the work ahead, not with one big job in the history', (t) => {
  // history: one 512² × 20-step job that took 26 s, then small ones at the same rate per pixel-step
  const bigJob = jobWork({ n: 1, width: 512, height: 512, steps: 20 }, model);
  const perUnit = [26_000 / bigJob];
  const smallAhead = 4 * jobWork({ n: 1, width: 64, height: 64, steps: 20 }, model);
  t.is(retryAfterSeconds(perUnit, smallAhead, 4, 1), 2); // 4 small jobs ≈ 1.6 s, not 4 × 26 s
  t.is(retryAfterSeconds(perUnit, 4 * bigJob, 4, 2), 52);
  t.is(retryAfterSeconds([], smallAhead, 4, 1), 5); // no history: a second per job ahead
  t.is(retryAfterSeconds(perUnit, 0, 0, 1), 1);
});
