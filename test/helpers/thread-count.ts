// Child process of test/threads.test.ts: counts this process's OS threads (/proc/self/task) before and after
// loading one SD pipeline with `threads` = argv[3] and generating one step, and prints the counts as JSON.
// libuv's worker pool (4 threads, created all at once on first use) is started before the first count, so the
// difference is only what the pipeline itself starts.
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';

const [libIndex, modelPath, threadsArg] = process.argv.slice(2);
const tasks = () => readdirSync('/proc/self/task').length;
await readFile(modelPath.endsWith('.safetensors') ? modelPath : `${modelPath}/model_index.json`); // start libuv's pool
const { loadPipeline } = (await import(pathToFileURL(libIndex).href)) as typeof import('../../lib/index.js');
const before = tasks();
const pipe = await loadPipeline(modelPath, { threads: Number(threadsArg) });
const afterLoad = tasks();
await pipe.generate({ prompt: 'a red circle', width: 128, height: 128, steps: 1, seed: 1 });
const afterGenerate = tasks();
await pipe.dispose();
process.stdout.write(`${JSON.stringify({ before, afterLoad, afterGenerate, cores: availableParallelism() })}\n`);
