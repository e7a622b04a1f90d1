"""Scenes for the quality bench and the TS checker's parity fixture.

  /usr/bin/python3 training/export_eval.py
writes models/default/eval-scenes.json (64 held-out scenes, seed 1: caption, relation, objects) and
test/fixtures/layered/checker.json (24 rendered scenes as base64 RGB + what training/data.py's checker reads back).
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def scene_json(s: data.Scene) -> dict:
    return {'caption': s.caption, 'relation': s.relation, 'background': s.background,
            'objects': [{'shape': o.shape, 'colour': o.colour, 'size': o.size, 'cx': round(o.cx, 3), 'cy': round(o.cy, 3)}
                        for o in s.objects]}


def main() -> None:
    scenes = [scene_json(data.make_scene(1, i)) for i in range(64)]
    with open(os.path.join(ROOT, 'models', 'default', 'eval-scenes.json'), 'w') as f:
        json.dump({'seed': 1, 'source': 'training/data.py make_scene(1, i)', 'scenes': scenes}, f, indent=0)
    cases = []
    for i in range(24):
        size = 64 if i < 16 else 32
        s = data.make_scene(2, i)
        img = data.render(s, size)
        if i % 5 == 4:  # some mismatched pairs too: the scene checked is the next one
            s = data.make_scene(2, i + 100)
        res = data.check(img, s)
        cases.append({'size': size, 'rgb': base64.b64encode(img.tobytes()).decode(), 'scene': scene_json(s),
                      'found': [[f.colour, f.shape, f.size] for f in res.found], 'all_ok': bool(res.all_ok)})
    os.makedirs(os.path.join(ROOT, 'test', 'fixtures', 'layered'), exist_ok=True)
    with open(os.path.join(ROOT, 'test', 'fixtures', 'layered', 'checker.json'), 'w') as f:
        json.dump(cases, f)


if __name__ == '__main__':
    main()
