// Copies the files tsc does not emit into dist/: the service's web page and its PNG worker thread
// (plain JavaScript so that it starts in any Node). Run by `npm run build:ts` after tsc.
import { cpSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const path of ['server/public', 'server/png-worker.mjs']) {
  cpSync(join(root, 'lib', path), join(root, 'dist', path), { recursive: true });
}
