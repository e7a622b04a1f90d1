"""Writes models/tokenizers/html5-entities.json: the named character references ftfy's unescape_html decodes,
keyed without '&' and ';' (read by lib/tokenizer/clean.ts).

Built as ftfy 6 builds its HTML_ENTITIES: every name of Python's html.entities.html5 that ends in ';', plus, for
all-lower-case names, the upper-cased name when HTML5 itself does not define it, mapped to the upper-cased
character.

  python3 tools/make-html-entities.py
"""
import html
import html.entities
import json
import os

out = {}
for name, char in html.entities.html5.items():
    if not name.endswith(';'):
        continue
    out[name[:-1]] = char
    if name == name.lower():
        upper = '&' + name.upper()
        if html.unescape(upper) == upper:
            out[name.upper()[:-1]] = char.upper()
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models', 'tokenizers', 'html5-entities.json')
with open(path, 'w', encoding='utf-8') as f:
    f.write(json.dumps(dict(sorted(out.items())), ensure_ascii=False, separators=(',', ':')) + '\n')
print(len(out), 'names ->', os.path.normpath(path))
