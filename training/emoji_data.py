"""Captioned emoji images (Twemoji and Noto Emoji from the npm registry) mixed into the shapes set.

`training/fetch_emoji.sh` puts emoji-datasource-{twitter,google}@16.0.0 into training/.cache/emoji. Each emoji of
every category but flags and skin-tone components is one 64 px image composited on the shapes set's white
background; its caption is one of its names, lower case ("red apple", "apple", "dog face", "dog"), sometimes with
"a " in front and the style after it (", flat style" for Twemoji, ", noto style" for Noto), so "a red apple" and
"dog face, flat style" are both training captions. Everything is chosen from the seed and the sample index.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '.cache', 'emoji')
SETS = {'twitter': 'flat style', 'google': 'noto style'}
SKIPPED_CATEGORIES = ('Flags', 'Component')
BACKGROUND = (245, 245, 245)  # data.BACKGROUNDS['white']


@dataclass
class Emoji:
    labels: list[str]
    images: dict[str, np.ndarray]  # set -> [64, 64, 3] uint8


def _labels(entry: dict) -> list[str]:
    out: list[str] = []
    for label in [entry['name'].lower()] + [s.replace('_', ' ') for s in entry['short_names']]:
        label = ' '.join(label.replace('-', ' ').split())
        if label and label not in out:
            out.append(label)
    return out


def _composite(path: str) -> np.ndarray:
    rgba = np.asarray(Image.open(path).convert('RGBA').resize((64, 64), Image.BOX), dtype=np.float32) / 255.0
    alpha = rgba[..., 3:]
    rgb = rgba[..., :3] * alpha + np.asarray(BACKGROUND, np.float32) / 255.0 * (1 - alpha)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


_CACHE: list[Emoji] | None = None


def load(root: str = ROOT) -> list[Emoji]:
    """Every usable emoji, in emoji.json order (cached after the first call)."""
    global _CACHE
    if _CACHE is not None:
        return _CACHE
    meta_path = os.path.join(root, 'twitter', 'emoji.json')
    if not os.path.exists(meta_path):
        raise FileNotFoundError(f'{meta_path} is missing: run training/fetch_emoji.sh first')
    with open(meta_path, encoding='utf-8') as f:
        entries = json.load(f)
    out: list[Emoji] = []
    for e in sorted(entries, key=lambda e: e['sort_order']):
        if e['category'] in SKIPPED_CATEGORIES:
            continue
        images = {}
        for s in SETS:
            path = os.path.join(root, s, 'img', s, '64', e['image'])
            if e.get(f'has_img_{s}') and os.path.exists(path):
                images[s] = _composite(path)
        if images:
            out.append(Emoji(_labels(e), images))
    _CACHE = out
    return out


def sample(seed: int, index: int) -> tuple[np.ndarray, str]:
    """Emoji sample number `index` of the set drawn with `seed`: (image [64, 64, 3] uint8, caption)."""
    items = load()
    rng = np.random.default_rng([seed, index, 2])
    item = items[int(rng.integers(len(items)))]
    style = sorted(item.images)[int(rng.integers(len(item.images)))]
    caption = item.labels[int(rng.integers(len(item.labels)))]
    if rng.random() < 0.5:
        caption = 'a ' + caption
    if rng.random() < 0.5:
        caption += ', ' + SETS[style]
    return item.images[style], caption


def all_captions() -> list[str]:
    """Every caption word the emoji samples can contain (for the model's vocabulary table)."""
    words = ['a', ','] + [w for s in SETS.values() for w in s.split()]
    return [' '.join(e.labels) for e in load()] + [' '.join(words)]


if __name__ == '__main__':
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else '/tmp/emoji_grid.png'
    samples = [sample(0, i) for i in range(16)]
    grid = np.stack([s[0] for s in samples]).reshape(4, 4, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(256, 256, 3)
    Image.fromarray(grid).resize((512, 512), Image.NEAREST).save(out)
    print(len(load()), 'emoji')
    print('\n'.join(s[1] for s in samples))
