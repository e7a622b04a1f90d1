"""The checker reads back clean generated scenes: count, colours, shapes, sizes and positions.

Run: python3 training/test_checker.py   (exits non-zero when an accuracy falls below its bound)
"""
import sys
import os

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402


def accuracy(size: int, n: int = 300, seed: int = 1234) -> dict[str, float]:
    keys = ('count_ok', 'colours_ok', 'objects_ok', 'sizes_ok', 'position_ok', 'all_ok')
    hits = dict.fromkeys(keys, 0)
    for i in range(n):
        scene = data.make_scene(seed, i)
        res = data.check(data.render(scene, size), scene)
        for k in keys:
            hits[k] += getattr(res, k)
    return {k: v / n for k, v in hits.items()}


def main() -> int:
    failures = []
    # Determinism: the same (seed, index) gives the same scene and pixels; a different seed differs.
    a, b = data.make_scene(7, 3), data.make_scene(7, 3)
    if a.caption != b.caption or not np.array_equal(data.render(a), data.render(b)):
        failures.append('scene (7, 3) is not reproducible')
    if all(data.make_scene(7, i).caption == data.make_scene(8, i).caption for i in range(10)):
        failures.append('seeds 7 and 8 give the same captions')
    # A blank image matches nothing; a scene checked against a different scene mostly fails.
    blank = np.full((64, 64, 3), 245, np.uint8)
    if data.check(blank, data.make_scene(0, 0)).all_ok:
        failures.append('blank image passes the checker')
    wrong = sum(data.check(data.render(data.make_scene(5, i)), data.make_scene(6, i)).all_ok for i in range(100))
    if wrong > 10:
        failures.append(f'{wrong}/100 mismatched scenes pass')
    bounds = {64: 0.98, 32: 0.8}  # 32 px: small shapes are 5 px across, their corners blur
    for size, bound in bounds.items():
        acc = accuracy(size)
        print(size, ' '.join(f'{k}={v:.3f}' for k, v in acc.items()))
        if acc['all_ok'] < bound:
            failures.append(f'all_ok {acc["all_ok"]:.3f} < {bound} at {size} px')
    print('mismatched scenes passing:', wrong, '/ 100')
    for f in failures:
        print('FAIL', f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
