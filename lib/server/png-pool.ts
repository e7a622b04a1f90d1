// PNG encoding off the event loop: a 512² image takes ~25 ms to filter and deflate, 768² ~55 ms,
// which would stall every other request of the service. Small images are encoded inline (the
// hand-off would cost more than it saves). The output is byte-identical to GeneratedImage.toPNG().
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { GeneratedImage } from '../image/image.js';

interface PngRequest {
  id: number;
  data: Uint8Array;
  width: number;
  height: number;
  parameters: string;
}

const INLINE_PIXELS = 128 * 128;

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, { resolve: (png: Buffer) => void; reject: (err: Error) => void }>();

function getWorker(): Worker {
  if (worker) return worker;
  // the library's encoder: .ts when running from source under tsx, .js when compiled
  const ext = extname(fileURLToPath(import.meta.url));
  const w = new Worker(new URL('./png-worker.mjs', import.meta.url), {
    workerData: { tsx: ext === '.ts', encoder: new URL(`../image/png${ext}`, import.meta.url).href },
  });
  w.unref();
  w.on('message', (m: { id: number; png?: Uint8Array; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.png) p.resolve(Buffer.from(m.png.buffer, m.png.byteOffset, m.png.byteLength));
    else p.reject(new Error(m.error ?? 'PNG encoding failed'));
    if (pending.size === 0) w.unref();
  });
  const fail = (err: Error) => {
    worker = undefined;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`PNG worker exited with code ${code}`)));
  worker = w;
  return w;
}

export function encodeImagePNG(image: GeneratedImage): Promise<Buffer> {
  if (image.width * image.height <= INLINE_PIXELS) return Promise.resolve(image.toPNG());
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    const w = getWorker();
    w.ref(); // keep the process alive while an image is being encoded
    const request: PngRequest = {
      id,
      data: image.data,
      width: image.width,
      height: image.height,
      parameters: image.parameters,
    };
    w.postMessage(request);
  });
}
