// A worker process for the Redis tests: examples/server/worker.ts serving the fake pipeline as
// model "tiny". Prints "ready <id>" when it takes jobs; SIGTERM closes it gracefully.
import { parseArgs } from 'node:util';
import { startWorker } from '../../lib/server/worker.js';
import { FakePipeline } from './fake-pipeline.js';

const { values } = parseArgs({
  options: {
    queue: { type: 'string' },
    'step-ms': { type: 'string', default: '20' },
    'lock-ms': { type: 'string', default: '1500' },
    'stalled-ms': { type: 'string', default: '500' },
    grace: { type: 'string', default: '5000' },
  },
});
const worker = await startWorker({
  url: values.queue as string,
  models: new Map([['tiny', new FakePipeline({ stepMs: Number(values['step-ms']) })]]),
  lockMs: Number(values['lock-ms']),
  stalledCheckMs: Number(values['stalled-ms']),
  id: `fake-${process.pid}`,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`ready ${worker.id}\n`);
process.once('SIGTERM', () => {
  void worker.close(Number(values.grace)).then(() => process.exit(0));
});
