// Prompt syntax and 77-token chunking as AUTOMATIC1111's web UI does it (modules/prompt_parser.py
// parse_prompt_attention and sd_hijack_clip.py tokenize_line), which ComfyUI follows for these forms:
//
//   (word)        weight x 1.1            [word]        weight / 1.1
//   (word:1.5)    weight x 1.5            ((word))      nesting multiplies: x 1.21
//   \( \) \[ \]   literal brackets        \\            a literal backslash (a lone '\' is dropped)
//   BREAK         (upper case, a whole word) ends the current 77-token chunk
//   unclosed '(' / '[' apply to the end of the prompt; a stray ')' or ']' is literal text.
//
// Chunks: the weighted fragments are tokenized separately (runs of equal weight are merged first, so a
// prompt without syntax is tokenized exactly as a whole, i.e. as diffusers does), then packed 75 tokens per
// chunk; each chunk becomes [start, 75 tokens, end] with the tail after the text filled like CLIPTokenizer
// (end token, then the tokenizer's pad token). When a chunk fills up and a comma lies within the last
// `commaBacktrack` tokens (A1111's comma_padding_backtrack, default 20), the words after the comma move to
// the next chunk. A text encoder runs each chunk on its own and the embeddings are concatenated along the
// sequence axis: [1, 77*k, C].
import { invalid } from '../errors.js';
import type { ClipTokenizer } from '../tokenizer/clip-bpe.js';

export interface WeightedFragment {
  text: string;
  weight: number;
}
/** A BREAK keyword: starts a new chunk. */
export const BREAK = Symbol('BREAK');
export type PromptPart = WeightedFragment | typeof BREAK;

export interface PromptChunk {
  /** 77 token ids: start, tokens, end, padding. */
  ids: number[];
  /** 77 per-token weights (1 on start, end and padding). */
  weights: number[];
}

export interface ChunkOptions {
  /** Interpret A1111 attention syntax and BREAK (default true); false = the text is taken literally. */
  syntax?: boolean;
  /** Tokens per chunk without start/end (default 75). */
  chunkLength?: number;
  /** A1111 comma_padding_backtrack (default 20; 0 disables). */
  commaBacktrack?: number;
}

const ATTENTION_TOKEN = /\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()[\]:]+|:/g;
const BREAK_SPLIT = /\s*(?<![\p{L}\p{N}_])BREAK(?![\p{L}\p{N}_])\s*/u;
const ROUND = 1.1;
const SQUARE = 1 / 1.1;

/** A1111's parse_prompt_attention: fragments with weights, BREAK markers, equal-weight runs merged. */
export function parsePromptAttention(text: string): PromptPart[] {
  if (typeof text !== 'string') invalid('a string', 'prompt', text);
  const res: (WeightedFragment | { brk: true })[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiplyRange = (start: number, m: number) => {
    for (let p = start; p < res.length; p++) {
      const r = res[p];
      if (!('brk' in r)) r.weight *= m;
    }
  };
  for (const m of text.matchAll(ATTENTION_TOKEN)) {
    const tok = m[0];
    const weight = m[1] !== undefined ? Number(m[1]) : undefined;
    if (tok.startsWith('\\')) {
      res.push({ text: tok.slice(1), weight: 1 });
    } else if (tok === '(') {
      round.push(res.length);
    } else if (tok === '[') {
      square.push(res.length);
    } else if (weight !== undefined && Number.isFinite(weight) && round.length > 0) {
      multiplyRange(round.pop()!, weight);
    } else if (tok === ')' && round.length > 0) {
      multiplyRange(round.pop()!, ROUND);
    } else if (tok === ']' && square.length > 0) {
      multiplyRange(square.pop()!, SQUARE);
    } else {
      tok.split(BREAK_SPLIT).forEach((part, i) => {
        if (i > 0) res.push({ brk: true });
        res.push({ text: part, weight: 1 });
      });
    }
  }
  for (const pos of round) multiplyRange(pos, ROUND);
  for (const pos of square) multiplyRange(pos, SQUARE);
  if (res.length === 0) res.push({ text: '', weight: 1 });
  const merged: PromptPart[] = [];
  for (const r of res) {
    if ('brk' in r) {
      merged.push(BREAK);
      continue;
    }
    const last = merged[merged.length - 1];
    if (last !== undefined && last !== BREAK && last.weight === r.weight) last.text += r.text;
    else merged.push({ text: r.text, weight: r.weight });
  }
  return merged;
}

/** Splits a prompt into 77-token chunks of ids and per-token weights (see the file header). */
export function promptToChunks(tokenizer: ClipTokenizer, prompt: string, options: ChunkOptions = {}): PromptChunk[] {
  const chunkLength = options.chunkLength ?? 75;
  if (!Number.isInteger(chunkLength) || chunkLength < 1) invalid('a positive integer', 'chunkLength', chunkLength);
  const backtrack = options.commaBacktrack ?? 20;
  if (!Number.isInteger(backtrack) || backtrack < 0) invalid('a non-negative integer', 'commaBacktrack', backtrack);
  const parts: PromptPart[] = options.syntax === false ? [{ text: prompt, weight: 1 }] : parsePromptAttention(prompt);
  const comma = tokenizer.encodeTokens(',')[0];

  const chunks: PromptChunk[] = [];
  let tokens: number[] = [];
  let weights: number[] = [];
  let lastComma = -1;
  const nextChunk = () => {
    const ids = [tokenizer.startTokenId, ...tokens, tokenizer.endTokenId];
    const w = [1, ...weights, 1];
    for (let i = ids.length; i < chunkLength + 2; i++) {
      ids.push(tokenizer.padTokenId);
      w.push(1);
    }
    chunks.push({ ids, weights: w });
    tokens = [];
    weights = [];
    lastComma = -1;
  };

  for (const part of parts) {
    if (part === BREAK) {
      nextChunk();
      continue;
    }
    for (const token of tokenizer.encodeTokens(part.text)) {
      if (token === comma) {
        lastComma = tokens.length;
      } else if (
        backtrack !== 0 &&
        tokens.length === chunkLength &&
        lastComma !== -1 &&
        tokens.length - lastComma <= backtrack
      ) {
        const relocTokens = tokens.slice(lastComma + 1);
        const relocWeights = weights.slice(lastComma + 1);
        tokens = tokens.slice(0, lastComma + 1);
        weights = weights.slice(0, lastComma + 1);
        nextChunk();
        tokens = relocTokens;
        weights = relocWeights;
      }
      if (tokens.length === chunkLength) nextChunk();
      tokens.push(token);
      weights.push(part.weight);
    }
  }
  if (tokens.length > 0 || chunks.length === 0) nextChunk();
  return chunks;
}

/**
 * Cond and uncond with different chunk counts cannot share one batched U-Net call; like A1111, the shorter
 * list is extended with the empty prompt's chunk (its embedding equals encoding "" on its own).
 */
export function matchChunkCounts(
  tokenizer: ClipTokenizer,
  cond: PromptChunk[],
  uncond: PromptChunk[],
  chunkLength = 75,
): { cond: PromptChunk[]; uncond: PromptChunk[] } {
  const empty = () => promptToChunks(tokenizer, '', { chunkLength })[0];
  const pad = (list: PromptChunk[], n: number) => [...list, ...Array.from({ length: n - list.length }, empty)];
  const n = Math.max(cond.length, uncond.length);
  return { cond: pad(cond, n), uncond: pad(uncond, n) };
}
