"""Reference for test/data/clip_basic_reference.json: transformers BasicTokenizer(strip_accents=False,
do_split_on_punc=False), what CLIPTokenizer uses without ftfy, on the ftfy set plus seeded random strings
(controls, format characters, CJK, private use). Usage: PYTHONPATH=<transformers> python3 tools/make-clip-basic-reference.py
"""
import json, sys
import os
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer
bt = BasicTokenizer(strip_accents=False, do_split_on_punc=False)
ref = json.load(open(os.path.join(ROOT, 'test/data/clip_ftfy_reference.json')))['cases']
import random
random.seed(1)
texts = [c['text'] for c in ref]
blocks = [(0x0,0x20),(0x7f,0xa0),(0x20,0x7e),(0x300,0x36f),(0x2000,0x206f),(0x3000,0x30ff),(0x4e00,0x4e80),(0x3400,0x3410),(0xf900,0xf910),(0x20000,0x20010),(0x1680,0x1681),(0xfff0,0xffff),(0x1f300,0x1f320),(0xe000,0xe005)]
for _ in range(300):
    texts.append(''.join(chr(random.randint(*random.choice(blocks))) for _ in range(random.randint(1, 10))))
out = [{"text": t, "basic": " ".join(bt.tokenize(t))} for t in texts if not any(0xd800 <= ord(ch) <= 0xdfff for ch in t)]
json.dump(out, open(os.path.join(ROOT, 'test/data/clip_basic_reference.json'), 'w'), ensure_ascii=True, indent=0)
print(len(out))
