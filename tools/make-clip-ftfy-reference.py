"""Reference clean-up and ids for test/data/clip_ftfy_reference.json.

Runs real ftfy (6.3.1 when generated) and the `regex` module with a line-by-line restatement of Hugging
Face CLIPTokenizer._tokenize / bpe (SD 1 added tokens) over hand-picked hard strings and seeded random
strings from many Unicode blocks. Usage: PYTHONPATH=<dir with ftfy, wcwidth, regex> python3 tools/make-clip-ftfy-reference.py
"""
import json, random, sys, os
import ftfy, regex as re
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
vocab = json.load(open(os.path.join(ROOT, 'models/tokenizers/clip/vocab.json')))
merges = open(os.path.join(ROOT, 'models/tokenizers/clip/merges.txt'), encoding='utf-8').read().strip().split('\n')[1:49152-256-2+1]
ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~")+1))+list(range(ord("¡"), ord("¬")+1))+list(range(ord("®"), ord("ÿ")+1))
    cs = bs[:]; n = 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256+n); n += 1
    return dict(zip(bs, [chr(c) for c in cs]))
be = bytes_to_unicode()
cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
def get_pairs(w): return set(zip(w, w[1:]))
def bpe(token):
    if token in cache: return cache[token]
    word = tuple(token[:-1]) + (token[-1] + "</w>",)
    pairs = get_pairs(word)
    if not pairs: return token + "</w>"
    while True:
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks: break
        first, second = bigram; new = []; i = 0
        while i < len(word):
            try: j = word.index(first, i)
            except ValueError: new.extend(word[i:]); break
            else: new.extend(word[i:j]); i = j
            if word[i] == first and i < len(word)-1 and word[i+1] == second: new.append(first+second); i += 2
            else: new.append(word[i]); i += 1
        word = tuple(new)
        if len(word) == 1: break
        pairs = get_pairs(word)
    word = " ".join(word); cache[token] = word; return word
pat = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", re.IGNORECASE)
def wclean(t):
    import re as sre
    return sre.sub(r"\s+", " ", t).strip()
def clean(t): return wclean(ftfy.fix_text(t)).lower()
def ids(text):
    out = []
    # split added tokens (SD1)
    parts = re.split(r'(<\|startoftext\|>|<\|endoftext\|>)', text)
    for p in parts:
        if p in ('<|startoftext|>', '<|endoftext|>'): out.append(vocab[p]); continue
        if not p: continue
        for tok in re.findall(pat, clean(p)):
            tok = "".join(be[b] for b in tok.encode("utf-8"))
            out.extend(vocab[x] for x in bpe(tok).split(" "))
    return out
corpus = [
 "caf\u00c3\u00a9", "\u00e2\u20ac\u0153quoted\u00e2\u20ac\u009d", "It\u00e2\u20ac\u2122s", "na\u00c3\u00afve r\u00c3\u00a9sum\u00c3\u00a9",
 "&amp;amp; &lt;b&gt; &nbsp;x &eacute; &Eacute; &EACUTE; &hellip; &mdash; &#8217; &#x2019; &#128512; &#0; &#x110000; &#65; &bogus; &amp",
 "<b>&amp;</b> stays", "line1 &amp;\nline2 <i> &amp;", "\ufb01\ufb02\ufb03 \u0132 \u01c4", "\uff28\uff45\uff4c\uff4c\uff4f\u3000\uff57\uff4f\uff52\uff4c\uff44\uff01",
 "\uff76\uff80\uff76\uff85", "\u2018single\u2019 \u201cdouble\u201d \u201e \u02bc", "a\r\nb\rc\u2028d\u2029e\x85f", "\x1b[31mred\x1b[0m", "a\x00b\x07c\x0bd\x0ce\x7ff\u200bg\u200dh\ufeffi\u2060j\u206ak",
 "\x80\x93\x9f c1", "e\u0301 n\u0303 \u212b", "\u00bd \u2153 \u00b2 \u2460", "\u0130stanbul \u03a3\u039f\u03a6\u0399\u0391\u03a3 stra\u00dfe", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea",
 "\u0939\u093f\u0928\u094d\u0926\u0940 \u0e44\u0e17\u0e22", "\U0001F469\U0001F3FD\u200d\U0001F4BB \U0001F1EF\U0001F1F5", "tab\tsep\u00a0nbsp\u2003em\u3000ideo", "don't WON'T I'M you'RE", "1,234.56e-7 \u0663\u0664 \u2167",
 "a\ud800b", "x" * 300, "BREAK (a:1.2) [b] \\(c\\)", "\u00a0 leading", "mixed caf\u00e9 and caf\u00c3\u00a9", "\u00c3 alone", "\u00c2\u00a0nbsp mojibake",
 "\u00f0\u0178\u02dc\u20ac emoji mojibake", "&#x1F600; &#128512;", "&quot;&apos;&lt;&gt;", "a<|endoftext|>b", "A <|EndOfText|> B", "\u2026\u2014\u2013",
 "\u1e9e \u00df \u0149 \u017f", "\u24b6\u24b7 \u2122 \u2120", "\U0001d400\U0001d401 math bold", "\u3131\u314f \u1100\u1161",
]
random.seed(0)
blocks = [(0x20,0x7e),(0xa0,0x17f),(0x300,0x36f),(0x370,0x3ff),(0x400,0x4ff),(0x2000,0x206f),(0x3000,0x30ff),(0x4e00,0x4e80),(0xff00,0xffef),(0x1f300,0x1f64f),(0x80,0x9f),(0xac00,0xac40),(0xfb00,0xfb06)]
for _ in range(150):
    s = ''.join(chr(random.randint(*random.choice(blocks))) for _ in range(random.randint(1, 12)))
    if random.random() < 0.3: s = s.replace(s[:1], '&amp;', 1)
    corpus.append(s)
res = [{"text": t, "clean": clean(t), "ids": ids(t)} for t in corpus]
meta = {"ftfy": ftfy.__version__, "regex": re.__version__}
with open(os.path.join(ROOT, 'test/data/clip_ftfy_reference.json'), 'w') as f:
    json.dump({"generator": meta, "cases": res}, f, ensure_ascii=True, indent=0)
print(len(res))
