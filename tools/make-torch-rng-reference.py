"""Extra torch.randn reference draws for test/data/torch_randn_extra.json (beyond test/fixtures/rng).

Run with Debian's python3-torch (1.13.1, the fixtures' torch): /usr/bin/python3 tools/make-torch-rng-reference.py
Covers seeds beyond 32 bits and negative seeds, every size 1..39 (scalar path below 16, vector path with a
recomputed tail above), larger odd sizes, and successive draws on one generator that mix both paths (the
scalar path's cached second sample). Values are stored as float32 bit patterns.
"""
import json, os, struct
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
cases = []


def add(name, seed, shapes):
    g = torch.Generator('cpu').manual_seed(seed)
    outs = []
    for sh in shapes:
        t = torch.randn(sh, generator=g, dtype=torch.float32)
        outs.append([struct.unpack('<I', struct.pack('<f', v))[0] for v in t.flatten().tolist()])
    cases.append({"name": name, "seed": str(seed), "shapes": shapes, "bits": outs})


for s in [2**32 + 7, 2**63 - 1, 2**64 - 1, -5, 12345678901234, 4294967295]:
    add(f'seed{s}', s, [[37]])
for n in list(range(1, 40)) + [100, 127, 1000]:
    add(f'size{n}', 99, [[n]])
add('mixed', 3, [[3], [5], [20], [1], [1], [16], [7], [33]])
add('scalar_cache_across_vector_draw', 4, [[1], [17], [1]])
with open(os.path.join(ROOT, 'test/data/torch_randn_extra.json'), 'w') as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
