#!/usr/bin/env node
// Passes ava's TAP output (`ava --tap`) through and ends with one plain summary line,
// "ava: N passed, N failed, N skipped", that CI logs can be read by. Exits non-zero when a test
// failed or when the output held no TAP plan (ava crashed or ran nothing).
// Usage: npm test -- --tap 2>&1 | node tools/ava-summary.mjs [summary-file]
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const counts = { tests: undefined, pass: 0, fail: 0, skip: 0, todo: 0 };
let notOk = 0;
const rl = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
for await (const line of rl) {
  process.stdout.write(`${line}\n`);
  const m = /^# (tests|pass|fail|skip|todo) (\d+)$/.exec(line);
  if (m) counts[m[1]] = Number(m[2]);
  if (/^not ok \d+/.test(line) && !/# (SKIP|TODO)/.test(line)) notOk++;
}
const failed = Math.max(counts.fail, notOk);
const summary = `ava: ${counts.pass} passed, ${failed} failed, ${counts.skip + counts.todo} skipped`;
console.log(summary);
if (process.argv[2]) writeFileSync(process.argv[2], `${summary}\n`);
if (counts.tests === undefined) {
  console.error('ava-summary: no TAP summary found (did ava run?)');
  process.exit(1);
}
process.exit(failed > 0 || counts.pass === 0 ? 1 : 0);
