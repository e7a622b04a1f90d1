"""S-CFG reference for test/data/scfg_reference.json, restating the official code (SmilesDZgk/S-CFG:
sd/utils.py get_mask with R=4, sd/sd.py's rate computation, the Attend-and-Excite GaussianSmoothing) in
plain torch (einops' rearranges written out). Random head-averaged attention probabilities for a square
latent (the official code assumes one), 2 layers at 1/4 and 1 at 1/8 of the latent side, batch [uncond, cond].
Run with Debian's python3-torch: /usr/bin/python3 tools/make-scfg-reference.py
"""
import base64, json, math, os, struct
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
torch.manual_seed(0)


def gaussian_kernel():
    ks, std = 3, 0.5
    kernel = 1
    grids = torch.meshgrid([torch.arange(ks, dtype=torch.float32) for _ in range(2)], indexing='ij')
    for g in grids:
        mean = (ks - 1) / 2
        kernel = kernel * 1 / (std * math.sqrt(2 * math.pi)) * torch.exp(-((g - mean) / (2 * std)) ** 2)
    kernel = kernel / torch.sum(kernel)
    return kernel.view(1, 1, ks, ks)


def smooth(x):  # x: [N, 1, h, w]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect'), gaussian_kernel())


def probs(shape, sharp):
    return torch.softmax(torch.randn(shape) * sharp, dim=-1)


def case(latent, T, scale, sharp):
    R = 4
    store = {'r4_self': [], 'r4_cross': [], 'r8_self': [], 'r8_cross': []}
    for r, count in ((4, 2), (8, 1)):
        hw = (latent // r) ** 2
        for _ in range(count):
            store[f'r{r}_self'].append(probs((2, hw, hw), sharp))
            store[f'r{r}_cross'].append(probs((2, hw, T), sharp))
    curr_r, r_r, new_ca, new_fore, a_n = R, 1, 0, 0, 0
    while curr_r <= 8:
        sa = torch.stack(store[f'r{curr_r}_self'], dim=1)
        ca = torch.stack(store[f'r{curr_r}_cross'], dim=1)
        n = sa.size(1)
        sa = sa.reshape(-1, *sa.shape[2:])
        ca = ca.reshape(-1, *ca.shape[2:])
        ssgc = 0 + sa
        for _ in range(3):
            ssgc += sa @ sa
        sa = ssgc / 4
        ca = sa @ ca
        h = w = int(sa.size(1) ** 0.5)
        ca = ca.reshape(ca.size(0), h, w, T).permute(0, 3, 1, 2)
        if r_r > 1:
            ca = F.interpolate(ca, scale_factor=r_r, mode='bilinear')
        b, c = ca.size(0), ca.size(1)
        ca = smooth(ca.reshape(b * c, 1, *ca.shape[2:])).squeeze(1).reshape(b, c, *ca.shape[2:])
        ca_norm = ca / (ca.mean(dim=[2, 3], keepdim=True) + 1e-8)
        new_ca = new_ca + ca_norm.reshape(-1, n, *ca_norm.shape[1:]).sum(1)
        fore = torch.stack([ca[:, 0], ca[:, 1:].sum(dim=1)], dim=1)
        fore = fore / fore.mean(dim=[2, 3], keepdim=True)
        new_fore = new_fore + fore.reshape(-1, n, *fore.shape[1:]).sum(1)
        a_n += n
        curr_r *= 2
        r_r *= 2
    new_ca, new_fore = new_ca / a_n, new_fore / a_n
    _, new_ca = new_ca.chunk(2, dim=0)
    fore_ca, _ = new_fore.chunk(2, dim=0)
    ca_mask = (new_ca == new_ca.max(dim=1)[0].unsqueeze(1)).float()
    fore_mask = 1.0 - (fore_ca == fore_ca.max(dim=1)[0].unsqueeze(1)).float()[:, :1]
    mask_t = F.interpolate(ca_mask, scale_factor=R, mode='nearest')
    mask_fore = F.interpolate(fore_mask, scale_factor=R, mode='nearest')
    eps_u = torch.randn(1, 4, latent, latent)
    eps_c = eps_u + 0.5 * torch.randn(1, 4, latent, latent) * torch.linspace(0.2, 2, latent).view(1, 1, 1, latent)
    delta = eps_c - eps_u
    dn = delta.norm(dim=1, keepdim=True)
    down = (dn * mask_t).sum([2, 3]) / (mask_t.sum([2, 3]) + 1e-8)
    up = (dn * mask_fore).sum([2, 3]) / (mask_fore.sum([2, 3]) + 1e-8)
    tmp = (mask_t.sum([2, 3]) > 0).float()
    rate = up * tmp / (down + 1e-8)
    rate = (rate.unsqueeze(-1).unsqueeze(-1) * mask_t).sum(dim=1, keepdim=True)
    rate = torch.clamp(rate, min=0.8, max=3.0)
    rate = torch.clamp_max(rate, 15.0 / scale)
    rate = smooth(rate)
    guided = eps_u + scale * rate * delta
    assert float(ca_mask.sum()) == latent * latent / R / R, 'argmax ties in this draw'
    def flat(t):  # float32 little-endian, base64
        v = t.flatten().tolist()
        return base64.b64encode(struct.pack(f'<{len(v)}f', *v)).decode()
    layers = []
    for r in (4, 8):
        for s, c in zip(store[f'r{r}_self'], store[f'r{r}_cross']):
            layers.append({'size': latent // r, 'self': [flat(s[0]), flat(s[1])], 'cross': [flat(c[0]), flat(c[1])]})
    return {'latent': latent, 'tokens': T, 'scale': scale, 'layers': layers, 'epsUncond': flat(eps_u),
            'epsCond': flat(eps_c), 'tokenOfPixel': flat(mask_t[0].argmax(dim=0)), 'foreground': flat(mask_fore),
            'rate': flat(rate), 'guided': flat(guided)}


cases = [case(16, 77, 7.5, 4.0), case(16, 77, 10.0, 2.0)]
with open(os.path.join(ROOT, 'test/data/scfg_reference.json'), 'w') as f:
    json.dump({'torch': torch.__version__, 'cases': cases}, f)
