// Worker thread: PNG encoding (filtering + deflate) of finished images, off the event loop.
// Plain JavaScript so that it starts in any Node: when the service runs from TypeScript source it
// registers tsx itself (worker threads do not inherit `--import tsx`), then loads the library's
// encoder, so the bytes are exactly those of GeneratedImage.toPNG().
import { parentPort, workerData } from 'node:worker_threads';

if (workerData.tsx) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { encodePNG } = await import(workerData.encoder);

parentPort.on('message', (m) => {
  try {
    const png = encodePNG(m.data, m.width, m.height, 3, m.parameters ? { parameters: m.parameters } : {});
    parentPort.postMessage({ id: m.id, png });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: err.message });
  }
});
