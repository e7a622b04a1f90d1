"""Reference layered sampler (PyTorch) and the checker-based quality numbers.

  python3 training/sample.py --run /tmp/layered-runs/layered --grid /tmp/grid.png        # 16 samples + captions
  python3 training/sample.py --run /tmp/layered-runs/layered --eval 64                     # alignment on 64 scenes

Sampler (docs/design.md §5.2): DDIM (η = 0) in the top scale's (α, σ) over a uniform grid of the shared t from 1 to 0; each
step the lower-scale inputs come from the top state, z_lo = D_k(z) / sqrt(α² + σ²/k²) with D_k the sinc low-pass +
decimation by k WITHOUT the unit-variance correction (= sinc_downsample / k); the model's top output v gives
x̂0 = α z − σ v (clipped to [-1, 1]) and ε̂ = σ z + α v; z ← α' x̂0 + σ' ε̂. CFG mixes the v's.
At a requested size other than native the schedule keeps the native sides (the shift belongs to the scale index).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model as M  # noqa: E402
from tokenizer import ClipBPE  # noqa: E402
from train import encode_batch  # noqa: E402


def entropy_scales(cfg: dict, height: int, width: int) -> list[float]:
    """λ = sqrt(ln N / ln T)/sqrt(d) for the three self-attention layers (s0/2, s0/4, s0/2 of the lowest scale)."""
    top = cfg['scales'][-1]
    s0 = cfg['scales'][0]
    out = []
    for div in (2, 4, 2):
        # the layer's real head size: C / floor(C / head_dim) (Attention.heads), so that N = T gives 1/sqrt(d)
        ch = cfg['inner_channels'][1 if div == 4 else 0]
        d = ch / max(1, ch // cfg['head_dim'])
        n = max(2, (height * s0 // top // div) * (width * s0 // top // div))
        t = max(2, (s0 // div) ** 2)
        out.append(math.sqrt(math.log(n) / math.log(t)) / math.sqrt(d))
    return out


@torch.no_grad()
def sample(net, cfg: dict, rows: torch.Tensor, uncond: torch.Tensor, steps: int = 25, guidance: float = 3.0,
           seed: int = 0, height: int = 64, width: int = 64, entropy: bool = False,
           z0: torch.Tensor | None = None, power: float = 1.0) -> torch.Tensor:
    """rows [B, 77] -> images [B, 3, H, W] in [-1, 1]; z0: the initial noise (default: randn from seed)"""
    b = rows.shape[0]
    top = cfg['scales'][-1]
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(b, 3, height, width, generator=gen) if z0 is None else z0.clone()
    ctx = net.text_model(torch.cat([rows, uncond.expand(b, -1)]))
    ss = entropy_scales(cfg, height, width) if entropy else None
    ts = torch.linspace(1.0, 0.0, steps + 1) ** power  # power > 1 spends more steps at low noise
    x0 = z
    for i in range(steps):
        t = ts[i].expand(b)
        a, s = M.alpha_sigma(M.logsnr_at(t[:1], top, cfg))
        zs = []
        for side in cfg['scales']:
            k = top // side
            zs.append(z if k == 1 else M.sinc_downsample(z, k) / k / torch.sqrt(a * a + s * s / (k * k)))
        v2 = net.diffusion_model([torch.cat([q, q]) for q in zs], torch.cat([t, t]), ctx, ss)[-1]
        v = v2[b:] + guidance * (v2[:b] - v2[b:])
        x0 = (a * z - s * v).clamp(-1, 1)
        eps = s * z + a * v
        a2, s2 = M.alpha_sigma(M.logsnr_at(ts[i + 1:i + 2], top, cfg))
        z = a2 * x0 + s2 * eps
    return x0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def load(run_or_ckpt: str):
    path = os.path.join(run_or_ckpt, 'ckpt.pt') if os.path.isdir(run_or_ckpt) else run_or_ckpt
    ck = torch.load(path, weights_only=False)
    net = M.LayeredModel(ck['config'])
    net.load_state_dict(ck['ema'])
    return net.eval(), ck['config'], ck['step']


def evaluate(net, cfg, bpe, n: int, seed: int = 1, size: int = 64, entropy: bool = False, **kw) -> dict:
    scenes = [data.make_scene(seed, i) for i in range(n)]
    uncond = encode_batch(bpe, cfg, [''])
    keys = ('count_ok', 'colours_ok', 'objects_ok', 'sizes_ok', 'position_ok', 'all_ok')
    hits = dict.fromkeys(keys, 0)
    found_counts = []
    for start in range(0, n, 16):
        chunk = scenes[start:start + 16]
        imgs = to_uint8(sample(net, cfg, encode_batch(bpe, cfg, [s.caption for s in chunk]), uncond, seed=start,
                               height=size, width=size, entropy=entropy, **kw))
        for img, sc in zip(imgs, chunk):
            if size != 64:  # the checker measures in 64 px units; resample to the native side
                from PIL import Image
                img = np.asarray(Image.fromarray(img).resize((64, 64), Image.BOX))
            res = data.check(img, sc)
            found_counts.append(len(res.found) - len(sc.objects))
            for k in keys:
                hits[k] += getattr(res, k)
    out = {k: v / n for k, v in hits.items()}
    fc = np.array(found_counts)
    out['extra_objects_rate'] = float((fc > 0).mean())    # repetition: more objects than asked
    out['missing_objects_rate'] = float((fc < 0).mean())  # incompleteness: fewer objects than asked
    return out


def evaluate_emoji(net, cfg, bpe, n: int, seed: int = 1, guidance: float = 3.0, **kw) -> dict:
    """Emoji retrieval: generate from an emoji's name, then rank all emoji images (both styles) by L2 distance
    at 16 px to the sample; a hit is the prompted emoji at rank 1 (top1) or within the first 5 (top5).
    Chance level is 1/len(emoji) and 5/len(emoji). `closer_than` is the mean fraction of the other emoji that are
    farther from the sample than the prompted one at 4x4 px (colour and coarse layout; chance 0.5)."""
    import emoji_data
    items = emoji_data.load()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(items), size=n, replace=False)
    fine, coarse, owner = [], [], []
    for k, e in enumerate(items):
        for img in e.images.values():
            fine.append(data.area_downsample(img.astype(np.float32), 4).ravel())
            coarse.append(data.area_downsample(img.astype(np.float32), 16).ravel())
            owner.append(k)
    fine, coarse, owner = np.stack(fine), np.stack(coarse), np.array(owner)

    def per_emoji(refs: np.ndarray, img: np.ndarray, k: int) -> np.ndarray:
        # squared L2 from the sample to each emoji's nearest image (either style), at refs' resolution
        d = ((refs - data.area_downsample(img.astype(np.float32), k).ravel()) ** 2).sum(axis=1)
        best = np.full(len(items), np.inf)
        np.minimum.at(best, owner, d)
        return best

    uncond = encode_batch(bpe, cfg, [''])
    top1 = top5 = 0
    closer = []
    for start in range(0, n, 16):
        chunk = picks[start:start + 16]
        caps = [items[k].labels[0] for k in chunk]
        imgs = to_uint8(sample(net, cfg, encode_batch(bpe, cfg, caps), uncond, seed=start, guidance=guidance, **kw))
        for img, k in zip(imgs, chunk):
            ranked = np.argsort(per_emoji(fine, img, 4), kind='stable')[:5]
            top1 += ranked[0] == k
            top5 += k in ranked
            best = per_emoji(coarse, img, 16)
            closer.append(float((best > best[k]).sum()) / (len(items) - 1))
    return {'emoji': len(items), 'n': n, 'top1': top1 / n, 'top5': top5 / n, 'closer_than': float(np.mean(closer)),
            'chance_top1': 1 / len(items), 'chance_top5': 5 / len(items)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', required=True)
    ap.add_argument('--grid')
    ap.add_argument('--eval', type=int, default=0)
    ap.add_argument('--steps', type=int, default=25)
    ap.add_argument('--guidance', type=float, default=3.0)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--entropy', action='store_true')
    ap.add_argument('--power', type=float, default=1.0)
    ap.add_argument('--emoji-eval', type=int, default=0, help='emoji retrieval accuracy over N emoji names')
    ap.add_argument('--prompts', help="with --grid: 16 prompts separated by ';' instead of held-out scenes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net, cfg, step = load(args.run)
    bpe = ClipBPE()
    print('step', step)
    if args.grid:
        from PIL import Image
        scenes = [data.make_scene(1, i) for i in range(16)]
        caps = [s.caption for s in scenes]
        if args.prompts:
            caps = (args.prompts.split(';') * 16)[:16]
            scenes = [None] * 16
        imgs = to_uint8(sample(net, cfg, encode_batch(bpe, cfg, caps), encode_batch(bpe, cfg, ['']),
                               steps=args.steps, guidance=args.guidance, height=args.size, width=args.size,
                               entropy=args.entropy, power=args.power))
        sz = args.size
        grid = imgs.reshape(4, 4, sz, sz, 3).transpose(0, 2, 1, 3, 4).reshape(4 * sz, 4 * sz, 3)
        Image.fromarray(grid).resize((4 * 128, 4 * 128), Image.NEAREST).save(args.grid)
        for i, (c, img, sc) in enumerate(zip(caps, imgs, scenes)):
            ok = 'OK' if sc is not None and data.check(img, sc).all_ok else ''
            print(i, c, '->', ok, [(f.size, f.colour, f.shape) for f in data.detect(img)])
    if args.emoji_eval:
        print(evaluate_emoji(net, cfg, bpe, args.emoji_eval, steps=args.steps, guidance=args.guidance))
    if args.eval:
        print(evaluate(net, cfg, bpe, args.eval, steps=args.steps, guidance=args.guidance, size=args.size,
                       entropy=args.entropy, power=args.power))


if __name__ == '__main__':
    main()
