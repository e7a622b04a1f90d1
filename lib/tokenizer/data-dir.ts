import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The shipped tokenizer data: <package>/models/tokenizers (from lib/ or dist/). */
export function tokenizerDataDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'tokenizers');
}
