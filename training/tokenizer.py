"""CLIP byte-level BPE (models/tokenizers/clip) for the training captions, and the small vocabulary table.

The captions are lower-case ASCII words and commas, so the pre-tokeniser reduces to letters / digits / other runs
(CLIP's regex on this alphabet). Ids are the real CLIP ids (49406 start, 49407 end, padded with 49407 to 77, SD1
style); the model stores `vocab`: the CLIP ids it knows, and embeds row 1 + vocab.index(id) (row 0 = unknown id).
"""
from __future__ import annotations

import json
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models', 'tokenizers', 'clip')
BOS, EOS, CONTEXT = 49406, 49407, 77


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class ClipBPE:
    def __init__(self, root: str = ROOT):
        with open(os.path.join(root, 'vocab.json'), encoding='utf-8') as f:
            self.encoder: dict[str, int] = json.load(f)
        with open(os.path.join(root, 'merges.txt'), encoding='utf-8') as f:
            merges = [tuple(line.split()) for line in f.read().split('\n')[1:] if line.strip()]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = _bytes_to_unicode()
        self.cache: dict[str, list[int]] = {}

    def _bpe(self, token: str) -> list[str]:
        word = list(token[:-1]) + [token[-1] + '</w>']
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, 1 << 30))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text: str) -> list[int]:
        text = re.sub(r'\s+', ' ', text.strip().lower())
        ids: list[int] = []
        for piece in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", text):
            if piece not in self.cache:
                enc = ''.join(self.byte_encoder[b] for b in piece.encode('utf-8'))
                self.cache[piece] = [self.encoder[t] for t in self._bpe(enc)]
            ids.extend(self.cache[piece])
        return ids

    def window(self, text: str) -> list[int]:
        """[BOS, ids..., EOS, EOS pad...] of length 77 (truncated like CLIPTokenizer)."""
        ids = [BOS] + self.encode(text)[:CONTEXT - 2] + [EOS]
        return ids + [EOS] * (CONTEXT - len(ids))


def build_vocab(bpe: ClipBPE, texts: list[str]) -> list[int]:
    ids = {BOS, EOS}
    for t in texts:
        ids.update(bpe.encode(t))
    return sorted(ids)


def rows_of(ids: list[int], vocab: list[int]) -> list[int]:
    index = {v: i + 1 for i, v in enumerate(vocab)}
    return [index.get(i, 0) for i in ids]
