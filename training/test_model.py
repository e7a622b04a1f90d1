"""Properties of the training-side operators (run: /usr/bin/python3 training/test_model.py).

* sinc_downsample maps white N(0,1) to white N(0,1) (variance ~1, lag-1 correlation ~0) and keeps a
  band-limited signal's low frequencies (a constant c becomes c·k: orthonormal gain; /k gives D, mean-preserving);
* the per-scale logSNR shift is exactly 2 ln(d_base/d); α² + σ² = 1;
* the U-Net returns one output per scale with the input's shape, also for non-square inputs.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402


def main() -> int:
    torch.manual_seed(0)
    fails = []
    e = torch.randn(32, 3, 64, 64)
    for k in (2, 4):
        lo = M.sinc_downsample(e, k)
        var = lo.var().item()
        lag = (lo[..., 1:] * lo[..., :-1]).mean().item()
        print(f'k={k} var {var:.4f} lag1 {lag:.4f}')
        if abs(var - 1) > 0.02 or abs(lag) > 0.02:
            fails.append(f'sinc k={k} not white: var {var}, lag {lag}')
        c = torch.full((1, 1, 64, 64), 0.3)
        if (M.sinc_downsample(c, k) / k - 0.3).abs().max() > 1e-5:
            fails.append(f'D does not keep a constant at k={k}')
    cfg = M.DEFAULT_CONFIG
    t = torch.linspace(0, 1, 11)
    d = M.logsnr_at(t, 32, cfg) - M.logsnr_at(t, 64, cfg)
    if (d - 2 * math.log(2)).abs().max() > 1e-5:
        fails.append('shift between 32 and 64 is not 2 ln 2')
    a, s = M.alpha_sigma(M.logsnr_at(t, 64, cfg))
    if ((a * a + s * s) - 1).abs().max() > 1e-5:
        fails.append('alpha^2 + sigma^2 != 1')
    cfg = dict(cfg, text=dict(cfg['text'], vocab_size=5))
    net = M.LayeredModel(cfg)
    ctx = net.text_model(torch.zeros(2, 77, dtype=torch.long))
    for h, w in ((64, 64), (48, 80)):
        zs = [torch.randn(2, 3, h * s // 64, w * s // 64) for s in cfg['scales']]
        outs = net.diffusion_model(zs, torch.rand(2), ctx)
        if [o.shape for o in outs] != [z.shape for z in zs]:
            fails.append(f'output shapes at {h}x{w}')
    for f in fails:
        print('FAIL', f)
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
