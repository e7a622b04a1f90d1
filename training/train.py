"""Train the layered model (or the single-scale baseline) on the synthetic shapes set. Resumable.

  nice -n 19 python3 training/train.py --run /tmp/layered-run --minutes 50
  nice -n 19 python3 training/train.py --run /tmp/baseline-run --minutes 50 --single-scale

The run folder holds ckpt.pt (model, EMA, optimiser, step, elapsed; rewritten atomically every --save-every
seconds), config.json and log.tsv (step, seconds, loss per scale). Starting again with the same --run resumes.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import emoji_data as emoji  # noqa: E402
import model as M  # noqa: E402
from tokenizer import ClipBPE, build_vocab, rows_of  # noqa: E402

VOCAB_WORDS = ' '.join(list(data.COLOURS) + list(data.SHAPES) + list(data.SIZES) + list(data.HPOS) + [
    'a left of above and , on a black background white'])


def make_config(single_scale: bool, bpe: ClipBPE, with_emoji: bool = False) -> dict:
    cfg = copy.deepcopy(M.DEFAULT_CONFIG)
    if single_scale:  # the same blocks on the top scale alone; the down path starts at 64 px
        cfg.update(scales=[64], scale_channels=[12], inner_channels=[24, 48], loss_weights=[1.0])
        cfg['schedule'] = dict(cfg['schedule'], base_size=16)  # the same shifted schedule at 64 px
        cfg['format'] = 'native-diffusion-layered'
    captions = [data.make_scene(0, i).caption for i in range(500)] + [VOCAB_WORDS]
    if with_emoji:
        captions += emoji.all_captions()
    cfg['vocab'] = build_vocab(bpe, captions)
    cfg['text']['vocab_size'] = len(cfg['vocab']) + 1
    return cfg


def encode_batch(bpe: ClipBPE, cfg: dict, captions: list[str]) -> torch.Tensor:
    return torch.tensor([rows_of(bpe.window(c), cfg['vocab']) for c in captions], dtype=torch.long)


def mixed_batch(seed: int, start: int, n: int, emoji_frac: float) -> tuple[np.ndarray, list[str]]:
    """Samples start .. start+n-1: each one an emoji with probability emoji_frac (drawn from seed and index),
    otherwise the synthetic scene of that index."""
    imgs, caps = [], []
    for index in range(start, start + n):
        if emoji_frac > 0 and np.random.default_rng([seed, index, 1]).random() < emoji_frac:
            img, cap = emoji.sample(seed, index)
        else:
            scene = data.make_scene(seed, index)
            img, cap = data.render(scene), scene.caption
        imgs.append(img)
        caps.append(cap)
    return np.stack(imgs), caps


def noised_batch(cfg: dict, x_top: torch.Tensor, t: torch.Tensor):
    """Per scale: z_s = α_s x_s + σ_s ε_s with x_s area-downsampled, ε_s sinc-downsampled from one top ε."""
    top = cfg['scales'][-1]
    eps_top = torch.randn_like(x_top)
    zs, targets = [], []
    for side in cfg['scales']:
        k = top // side
        x = M.area_downsample(x_top, k)
        eps = M.sinc_downsample(eps_top, k)
        a, s = M.alpha_sigma(M.logsnr_at(t, side, cfg))
        a, s = a[:, None, None, None], s[:, None, None, None]
        zs.append(a * x + s * eps)
        targets.append(a * eps - s * x)  # v
    return zs, targets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', required=True)
    ap.add_argument('--minutes', type=float, default=50.0, help='total training time across resumes (see --clock)')
    ap.add_argument('--clock', choices=['cpu', 'wall'], default='cpu',
                    help='budget in process CPU time (fair between runs sharing a busy machine) or wall time')
    ap.add_argument('--batch', type=int, default=24)
    ap.add_argument('--lr', type=float, default=6e-4)
    ap.add_argument('--ema', type=float, default=0.995)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)  # 1: OpenMP barriers collapse on an oversubscribed machine
    ap.add_argument('--save-every', type=float, default=180.0)
    ap.add_argument('--single-scale', action='store_true')
    ap.add_argument('--uncond-prob', type=float, default=0.1)
    ap.add_argument('--low-t-frac', type=float, default=0.0,
                    help='fraction of each batch with t ~ U(0, --low-t-max) instead of U(0, 1): the top scale is '
                         'below SNR 1 for t > 0.1, so uniform t spends 90%% of its samples on its noisy end')
    ap.add_argument('--low-t-max', type=float, default=0.2)
    ap.add_argument('--emoji-frac', type=float, default=0.0,
                    help='fraction of samples drawn from the emoji sets (training/fetch_emoji.sh) instead of shapes')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.run, exist_ok=True)
    bpe = ClipBPE()
    ckpt_path = os.path.join(args.run, 'ckpt.pt')
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, weights_only=False)
        cfg = ck['config']
    else:
        ck, cfg = None, make_config(args.single_scale, bpe, args.emoji_frac > 0)
    net = M.LayeredModel(cfg)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    step, elapsed = 0, 0.0
    if ck is not None:
        net.load_state_dict(ck['model'])
        ema.load_state_dict(ck['ema'])
        opt.load_state_dict(ck['opt'])
        step, elapsed = ck['step'], ck['elapsed']
        torch.set_rng_state(ck['rng'])
    else:
        torch.manual_seed(args.seed)
    with open(os.path.join(args.run, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=1)
    nparams = sum(p.numel() for p in net.parameters())
    print(f'params {nparams} (unet {sum(p.numel() for p in net.diffusion_model.parameters())}), step {step}',
          flush=True)
    uncond = encode_batch(bpe, cfg, [''])
    log = open(os.path.join(args.run, 'log.tsv'), 'a')
    weights = cfg['loss_weights']
    clock = time.process_time if args.clock == 'cpu' else time.time
    last_save, t0 = time.time(), clock() - elapsed
    running = None
    while clock() - t0 < args.minutes * 60:
        imgs, caps = mixed_batch(args.seed, step * args.batch, args.batch, args.emoji_frac)
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        rows = encode_batch(bpe, cfg, caps)
        drop = torch.rand(len(caps)) < args.uncond_prob
        rows[drop] = uncond
        t = torch.rand(len(caps))
        low = torch.rand(len(caps)) < args.low_t_frac
        t[low] *= args.low_t_max
        zs, targets = noised_batch(cfg, x, t)
        ctx = net.text_model(rows)
        outs = net.diffusion_model(zs, t, ctx)
        losses = [F.mse_loss(o, tg) for o, tg in zip(outs, targets)]
        loss = sum(w * l for w, l in zip(weights, losses)) / sum(weights)
        lr = args.lr * min(1.0, (step + 1) / 100)
        for gparam in opt.param_groups:
            gparam['lr'] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - decay)
        step += 1
        vals = [l.item() for l in losses]
        running = vals if running is None else [0.95 * r + 0.05 * v for r, v in zip(running, vals)]
        if step % 10 == 0:
            line = f'{step}\t{clock() - t0:.0f}\t' + '\t'.join(f'{v:.4f}' for v in running)
            log.write(line + '\n')
            log.flush()
        if time.time() - last_save > args.save_every:
            save(ckpt_path, net, ema, opt, cfg, step, clock() - t0)
            last_save = time.time()
    save(ckpt_path, net, ema, opt, cfg, step, clock() - t0)
    print('done', step, flush=True)


def save(path, net, ema, opt, cfg, step, elapsed):
    tmp = path + '.tmp'
    torch.save({'model': net.state_dict(), 'ema': ema.state_dict(), 'opt': opt.state_dict(), 'config': cfg,
                'step': step, 'elapsed': elapsed, 'rng': torch.get_rng_state()}, tmp)
    os.replace(tmp, path)


if __name__ == '__main__':
    main()
