"""Emoji data: deterministic from (seed, index), captions built from the emoji's names, images on white.

  /usr/bin/python3 training/test_emoji.py     (after training/fetch_emoji.sh)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emoji_data  # noqa: E402
import train  # noqa: E402


def main() -> None:
    items = emoji_data.load()
    assert len(items) > 1500, len(items)
    apple = [e for e in items if 'red apple' in e.labels]
    assert len(apple) == 1 and set(apple[0].images) == {'twitter', 'google'}
    img = apple[0].images['twitter']
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert tuple(img[0, 0]) == emoji_data.BACKGROUND, img[0, 0]  # transparent corner -> white
    red = (img[..., 0].astype(int) - img[..., 1]) > 100
    assert red.mean() > 0.2, red.mean()  # the apple is mostly red
    a, b = emoji_data.sample(0, 7), emoji_data.sample(0, 7)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    caps = {emoji_data.sample(0, i)[1] for i in range(400)}
    assert len(caps) > 300
    assert any(c.startswith('a ') for c in caps) and any(c.endswith(', flat style') for c in caps)
    imgs, caps = train.mixed_batch(0, 0, 200, 0.3)
    shapes = sum(1 for c in caps if any(s in c for s in ('circle', 'square', 'triangle', 'star ')))
    assert 0.55 < shapes / 200 < 0.85, shapes
    imgs0, caps0 = train.mixed_batch(0, 0, 200, 0.0)
    assert all(any(s in c for s in ('circle', 'square', 'triangle', 'star')) for c in caps0)
    print('emoji data OK:', len(items), 'emoji')


if __name__ == '__main__':
    main()
