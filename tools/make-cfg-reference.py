"""CFG and guidance-rescale reference for test/data/cfg_reference.json: diffusers' formulas
(noise_pred_uncond + w * (noise_pred_text - noise_pred_uncond); rescale_noise_cfg) in float32 torch.
Run with Debian's python3-torch: /usr/bin/python3 tools/make-cfg-reference.py
"""
import base64, json, os, struct
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
torch.manual_seed(1)


def rescale_noise_cfg(noise_cfg, noise_pred_text, guidance_rescale=0.0):  # diffusers 0.29
    std_text = noise_pred_text.std(dim=list(range(1, noise_pred_text.ndim)), keepdim=True)
    std_cfg = noise_cfg.std(dim=list(range(1, noise_cfg.ndim)), keepdim=True)
    noise_pred_rescaled = noise_cfg * (std_text / std_cfg)
    return guidance_rescale * noise_pred_rescaled + (1 - guidance_rescale) * noise_cfg


def b64(t):
    v = t.flatten().tolist()
    return base64.b64encode(struct.pack(f'<{len(v)}f', *v)).decode()


u = torch.randn(2, 4, 8, 8)
c = u + torch.randn(2, 4, 8, 8) * torch.tensor([0.3, 1.7]).view(2, 1, 1, 1)
out = {'shape': [2, 4, 8, 8], 'uncond': b64(u), 'cond': b64(c), 'cases': []}
for w, phi in ((7.5, 0.0), (7.5, 0.7), (3.0, 1.0)):
    g = u + w * (c - u)
    out['cases'].append({'scale': w, 'rescale': phi, 'cfg': b64(g), 'rescaled': b64(rescale_noise_cfg(g, c, phi))})
with open(os.path.join(ROOT, 'test/data/cfg_reference.json'), 'w') as f:
    json.dump(out, f)
