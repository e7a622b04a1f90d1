// CLIP byte-level BPE tokenizer, behaving exactly like Hugging Face's (slow) CLIPTokenizer as Stable Diffusion
// pipelines call it: `tokenizer(prompt, padding='max_length', max_length=77, truncation=True)`.
//
// Steps, in transformers' order:
// 1. Added tokens are split out first, case-sensitively and before any clean-up: `<|startoftext|>` (49406),
//    `<|endoftext|>` (49407) and, for SD 2 tokenizers whose pad token is '!', every '!' (id 0) — that is why
//    SD 2 turns "cat!!!" into cat</w> ! ! ! while SD 1 gets one BPE token !!!</w>.
// 2. Each remaining piece is cleaned (`cleaning: 'ftfy'` default, or 'basic'; see clean.ts).
// 3. The pre-tokenizer regex cuts words; each word's UTF-8 bytes map through bytes_to_unicode and run BPE
//    with '</w>' on the last symbol; token strings map to ids through vocab.json.
// 4. Ids are truncated to 75, wrapped in 49406 ... 49407 and padded to 77; the attention mask is 1 on the
//    real tokens (start and end included) and 0 on padding.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { invalid } from '../errors.js';
import { cleanBasic, cleanFtfy } from './clean.js';
import { tokenizerDataDir } from './data-dir.js';

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
export const START_OF_TEXT_ID = 49406;
export const END_OF_TEXT_ID = 49407;
/** CLIP's context: start + 75 tokens + end. */
export const CLIP_MAX_LENGTH = 77;

export type TextCleaning = 'ftfy' | 'basic';

export interface ClipTokenizerOptions {
  /** Padding token: '<|endoftext|>' (SD 1.x, id 49407) or '!' (SD 2.x, id 0, which also splits every '!'). */
  padToken?: '<|endoftext|>' | '!';
  /** Text clean-up, 'ftfy' (default; CLIPTokenizer with ftfy installed) or 'basic' (without ftfy). */
  cleaning?: TextCleaning;
}

export interface EncodeOptions {
  /** Total length including start/end (default 77). */
  maxLength?: number;
  /** Cut to maxLength (default true). */
  truncation?: boolean;
  /** Pad to maxLength with the pad token (default true). */
  padding?: boolean;
}

export interface ClipEncoding {
  inputIds: number[];
  attentionMask: number[];
  /** Token count with start and end before truncation and padding. */
  untruncatedLength: number;
}

/** GPT-2/CLIP `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 upwards in byte order. */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = printable(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return table;
}

const PRE_TOKENIZER = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;
const CACHE_LIMIT = 50_000;

/** Default location of the shipped vocabulary: <package>/models/tokenizers/clip (from lib/ or dist/). */
export function defaultClipVocabDir(): string {
  return join(tokenizerDataDir(), 'clip');
}

export class ClipTokenizer {
  readonly padToken: '<|endoftext|>' | '!';
  readonly padTokenId: number;
  readonly cleaning: TextCleaning;
  readonly vocabSize: number;
  private readonly encoder: Map<string, number>;
  private decoderCache: string[] | undefined;
  private readonly ranks: Map<string, number>;
  private readonly byteEncoder = bytesToUnicode();
  private readonly byteDecoder = new Map<string, number>();
  private readonly addedTokens: Map<string, number>;
  private readonly cache = new Map<string, string[]>();
  private readonly utf8 = new TextEncoder();

  /** vocab: token -> id; merges: merges.txt content (first line is the '#version' header, then one 'a b' pair per line). */
  constructor(vocab: Record<string, number>, merges: string, options: ClipTokenizerOptions = {}) {
    const pad = options.padToken ?? '<|endoftext|>';
    if (pad !== '<|endoftext|>' && pad !== '!') invalid("'<|endoftext|>' or '!'", 'padToken', pad);
    const cleaning = options.cleaning ?? 'ftfy';
    if (cleaning !== 'ftfy' && cleaning !== 'basic') invalid("'ftfy' or 'basic'", 'cleaning', cleaning);
    this.cleaning = cleaning;
    this.encoder = new Map(Object.entries(vocab));
    this.vocabSize = this.encoder.size;
    for (const t of [START_OF_TEXT, END_OF_TEXT, pad]) {
      if (!this.encoder.has(t))
        invalid(`a vocabulary containing ${JSON.stringify(t)}`, 'vocab', `${this.vocabSize} tokens`);
    }
    this.ranks = new Map();
    const lines = merges.split('\n');
    // CLIPTokenizer: merges.txt lines 1 .. 49152-256-2 (line 0 is the header).
    const count = Math.min(lines.length - 1, 49152 - 256 - 2);
    for (let i = 1; i <= count; i++) {
      const line = lines[i].replace(/\r$/, '');
      if (line.length === 0) continue;
      this.ranks.set(line, i - 1);
    }
    this.byteEncoder.forEach((c, b) => this.byteDecoder.set(c, b));
    this.padToken = pad;
    this.padTokenId = this.encoder.get(pad)!;
    this.addedTokens = new Map();
    this.addedTokens.set(START_OF_TEXT, this.encoder.get(START_OF_TEXT)!);
    this.addedTokens.set(END_OF_TEXT, this.encoder.get(END_OF_TEXT)!);
    if (pad === '!') this.addedTokens.set('!', this.padTokenId);
  }

  /** Loads vocab.json and merges.txt from a folder (default: the vocabulary shipped with the package). */
  static load(dir: string = defaultClipVocabDir(), options: ClipTokenizerOptions = {}): ClipTokenizer {
    const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    const merges = readFileSync(join(dir, 'merges.txt'), 'utf8');
    return new ClipTokenizer(vocab, merges, options);
  }

  get startTokenId(): number {
    return this.addedTokens.get(START_OF_TEXT)!;
  }

  get endTokenId(): number {
    return this.addedTokens.get(END_OF_TEXT)!;
  }

  /** Token strings (BPE pieces and added tokens) of a text, without start/end. */
  tokenize(text: string): string[] {
    if (typeof text !== 'string') invalid('a string', 'text', text);
    const out: string[] = [];
    for (const piece of this.splitAddedTokens(text)) {
      if (this.addedTokens.has(piece)) {
        out.push(piece);
        continue;
      }
      // U+0345 (combining ypogegrammeni) matches no branch of the pre-tokenizer under Python regex's
      // IGNORECASE (it case-folds to a letter without being one) and is skipped; JS /iu would take it as a
      // letter. A space is skipped the same way.
      const cleaned = (this.cleaning === 'ftfy' ? cleanFtfy(piece) : cleanBasic(piece)).replace(/\u0345/g, ' ');
      for (const m of cleaned.matchAll(PRE_TOKENIZER)) {
        let mapped = '';
        for (const b of this.utf8.encode(m[0])) mapped += this.byteEncoder[b];
        out.push(...this.bpe(mapped));
      }
    }
    return out;
  }

  /** Ids of a text without start/end, truncation or padding. */
  encodeTokens(text: string): number[] {
    return this.tokenize(text).map((t) => this.addedTokens.get(t) ?? this.encoder.get(t) ?? this.endTokenId);
  }

  /** `tokenizer(text, padding='max_length', max_length=77, truncation=True)`. */
  encode(text: string, options: EncodeOptions = {}): ClipEncoding {
    const maxLength = options.maxLength ?? CLIP_MAX_LENGTH;
    if (!Number.isInteger(maxLength) || maxLength < 2) invalid('an integer >= 2', 'maxLength', maxLength);
    return this.wrap(this.encodeTokens(text), maxLength, options.truncation ?? true, options.padding ?? true);
  }

  /** Wraps body ids with start/end, truncating the body to maxLength - 2 and padding to maxLength. */
  wrap(body: readonly number[], maxLength = CLIP_MAX_LENGTH, truncation = true, padding = true): ClipEncoding {
    const untruncatedLength = body.length + 2;
    const kept = truncation ? body.slice(0, Math.max(0, maxLength - 2)) : body.slice();
    const inputIds = [this.startTokenId, ...kept, this.endTokenId];
    const attentionMask = inputIds.map(() => 1);
    if (padding) {
      while (inputIds.length < maxLength) {
        inputIds.push(this.padTokenId);
        attentionMask.push(0);
      }
    }
    return { inputIds, attentionMask, untruncatedLength };
  }

  /** Token string of an id (undefined when out of range). */
  idToToken(id: number): string | undefined {
    return this.decoder()[id];
  }

  /** id -> token string table, built on first use (encoding never needs it). */
  private decoder(): string[] {
    if (!this.decoderCache) {
      const table: string[] = [];
      for (const [token, id] of this.encoder) table[id] = token;
      this.decoderCache = table;
    }
    return this.decoderCache;
  }

  /** Text of a list of ids (special tokens dropped, '</w>' read as a space), as CLIPTokenizer.decode. */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (id === this.startTokenId || id === this.endTokenId) continue;
      const token = this.decoder()[id];
      if (token === undefined) continue;
      const word = token.endsWith('</w>') ? token.slice(0, -4) : token;
      for (const c of word) bytes.push(this.byteDecoder.get(c) ?? 0x3f);
      if (token.endsWith('</w>')) bytes.push(0x20);
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).trim();
  }

  /** Splits out added tokens (longest match first, as transformers' Trie), keeping the text between them. */
  private splitAddedTokens(text: string): string[] {
    const pieces: string[] = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      let match = '';
      for (const t of this.addedTokens.keys()) {
        if (t.length > match.length && text.startsWith(t, i)) match = t;
      }
      if (match) {
        if (i > start) pieces.push(text.slice(start, i));
        pieces.push(match);
        i += match.length;
        start = i;
      } else {
        i++;
      }
    }
    if (start < text.length) pieces.push(text.slice(start));
    return pieces;
  }

  /** CLIP's BPE on one pre-token (already mapped through bytes_to_unicode); cached. */
  private bpe(token: string): string[] {
    // CLIPTokenizer seeds its BPE cache with the two special tokens, so "<|endoftext|>" surviving clean-up
    // (e.g. typed as "<|EndOfText|>", which the case-sensitive added-token split misses) stays one token.
    if (token === START_OF_TEXT || token === END_OF_TEXT) return [token];
    const hit = this.cache.get(token);
    if (hit) return hit;
    let word: string[] = [...token];
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i + 1 < word.length && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]);
          i++;
        }
      }
      word = merged;
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(token, word);
    return word;
  }
}
