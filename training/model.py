"""The layered multi-scale U-Net, its tiny CLIP-architecture text encoder, the shifted cosine schedule and the sinc
noise operator (docs/design.md §5.2). training/README.md documents the exact graph: native/models/layered_unet.cc mirrors it.

Module names follow the LDM single-file layout (ResBlock in_layers/emb_layers/out_layers/skip_connection,
SpatialTransformer norm/proj_in/transformer_blocks.0.{attn1,attn2,ff}/proj_out, CLIP text_model.*), so the exported
keys read like an SD checkpoint's.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    'format': 'native-diffusion-layered',
    'scales': [16, 32, 64],         # image sides, lowest first; the lowest runs the full down path
    'in_channels': 3,
    'scale_channels': [32, 24, 12],  # feature channels of each scale's input conv / output head
    'inner_channels': [64, 96],       # the levels below the lowest scale (8 px with attention, then 4 px middle)
    'head_dim': 16,
    'groups': 4,
    'time_embed_dim': 128,
    'time_freq_dim': 64,
    'context_dim': 64,
    'prediction_type': 'v',
    'loss_weights': [0.25, 0.5, 1.0],
    'schedule': {'type': 'shifted-cosine', 'base_size': 16, 'logsnr_min': -15.0, 'logsnr_max': 15.0},
    'text': {'vocab_size': 0, 'width': 64, 'layers': 2, 'heads': 2, 'max_positions': 77, 'mlp_ratio': 4},
}


# ------------------------------------------------------------------------------------------------ schedule, noise

def logsnr_cosine(t: torch.Tensor, lmin: float = -15.0, lmax: float = 15.0) -> torch.Tensor:
    t_min = math.atan(math.exp(-0.5 * lmax))
    t_max = math.atan(math.exp(-0.5 * lmin))
    return -2.0 * torch.log(torch.tan(t_min + t * (t_max - t_min)))


def logsnr_at(t: torch.Tensor, side: int, cfg: dict) -> torch.Tensor:
    s = cfg['schedule']
    return logsnr_cosine(t, s['logsnr_min'], s['logsnr_max']) + 2.0 * math.log(s['base_size'] / side)


def alpha_sigma(logsnr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


def _sinc_axis(x: torch.Tensor, m: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    f = torch.fft.fft(x, dim=dim, norm='ortho')
    h = m // 2
    lo = f.narrow(dim, 0, h)
    nyq = (f.narrow(dim, h, 1) + f.narrow(dim, n - h, 1)) / math.sqrt(2.0)
    hi = f.narrow(dim, n - h + 1, h - 1)
    return torch.fft.ifft(torch.cat([lo, nyq, hi], dim=dim), dim=dim, norm='ortho').real


def sinc_downsample(x: torch.Tensor, k: int) -> torch.Tensor:
    """Ideal low-pass + decimation by k of [..., H, W] with orthonormal FFTs: white N(0,1) in, white N(0,1) out."""
    if k == 1:
        return x
    x = _sinc_axis(x.double(), x.shape[-2] // k, -2)
    return _sinc_axis(x, x.shape[-1] // k, -1).float()


def area_downsample(x: torch.Tensor, k: int) -> torch.Tensor:
    return x if k == 1 else F.avg_pool2d(x, k)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """LDM sinusoidal embedding of 1000·t: [cos(1000 t f_i), sin(1000 t f_i)], f_i = 10000^(-i/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


# ------------------------------------------------------------------------------------------------ U-Net blocks

def sdpa(q, k, v, scale: float | None = None, causal: bool = False):
    """softmax(scale q kᵀ [+ causal mask]) v; scale defaults to 1/sqrt(head_dim). (torch 1.13 has no fused SDPA.)"""
    s = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5 if scale is None else scale)
    if causal:
        n = s.shape[-1]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float('-inf'))
    return s.softmax(-1) @ v


def norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-5)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, groups: int):
        super().__init__()
        self.in_layers = nn.Sequential(norm(cin, groups), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout))
        self.out_layers = nn.Sequential(norm(cout, groups), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.in_layers(x)
        h = h + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Attention(nn.Module):
    def __init__(self, dim: int, ctx: int, head_dim: int):
        super().__init__()
        self.heads = dim // head_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(ctx, dim, bias=False)
        self.to_v = nn.Linear(ctx, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))

    def forward(self, x, ctx=None, scale: float | None = None):
        ctx = x if ctx is None else ctx
        b, n, c = x.shape
        split = lambda t: t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.to_q(x)), split(self.to_k(ctx)), split(self.to_v(ctx))
        o = sdpa(q, k, v, scale)
        return self.to_out(o.transpose(1, 2).reshape(b, n, c))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        a, g = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(g)


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * 4), nn.Dropout(0.0), nn.Linear(dim * 4, dim))

    def forward(self, x):
        return self.net(x)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, ctx: int, head_dim: int):
        super().__init__()
        self.attn1 = Attention(dim, dim, head_dim)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, ctx, head_dim)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, ctx, self_scale=None):
        x = x + self.attn1(self.norm1(x), scale=self_scale)
        x = x + self.attn2(self.norm2(x), ctx)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """SD1-style: GroupNorm, 1x1 conv in, one transformer block, 1x1 conv out, residual."""

    def __init__(self, ch: int, ctx: int, head_dim: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(ch, ctx, head_dim)])
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x, ctx, self_scale=None):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        y = self.transformer_blocks[0](y, ctx, self_scale)
        return x + self.proj_out(y.transpose(1, 2).reshape(b, c, h, w))


class Upsample(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode='nearest'))


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class OutHead(nn.Module):
    def __init__(self, ch: int, cout: int, groups: int):
        super().__init__()
        self.norm = norm(ch, groups)
        self.conv = nn.Conv2d(ch, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.silu(self.norm(x)))


class LayeredUNet(nn.Module):
    """Inputs z_s at every scale s (lowest first) -> v_s at every scale.

    Lowest scale (e.g. 16): conv_in.0 -> input_blocks.0 (ResBlock) [skip a] -> down.0 -> 8 px: input_blocks.1
    (ResBlock + SpatialTransformer) [skip b] -> down.1 -> 4 px: middle_block (ResBlock, SpatialTransformer, ResBlock)
    -> output_blocks.0 (ResBlock on cat(h, b) + SpatialTransformer) -> up.0 -> output_blocks.1 (ResBlock on cat(h, a))
    -> out.0. Every higher scale i: conv_in.i [skip] only ("isolated": it never feeds the down path);
    up.i (nearest 2x + conv) -> output_blocks.i (ResBlock on cat(h, skip)) -> out.i.
    """

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        g, emb, ctx, hd = cfg['groups'], cfg['time_embed_dim'], cfg['context_dim'], cfg['head_dim']
        sc, (c1, c2) = cfg['scale_channels'], cfg['inner_channels']
        cin = cfg['in_channels']
        self.time_embed = nn.Sequential(nn.Linear(cfg['time_freq_dim'], emb), nn.SiLU(), nn.Linear(emb, emb))
        self.conv_in = nn.ModuleList([nn.Conv2d(cin, c, 3, padding=1) for c in sc])
        self.input_blocks = nn.ModuleList([
            nn.ModuleList([ResBlock(sc[0], sc[0], emb, g)]),
            nn.ModuleList([ResBlock(sc[0], c1, emb, g), SpatialTransformer(c1, ctx, hd, g)]),
        ])
        self.down = nn.ModuleList([Downsample(sc[0]), Downsample(c1)])
        self.middle_block = nn.ModuleList([
            ResBlock(c1, c2, emb, g), SpatialTransformer(c2, ctx, hd, g), ResBlock(c2, c2, emb, g)])
        # output_blocks.0 at 8 px, output_blocks.1 at the lowest scale, output_blocks.i+1 at scale i (i >= 1)
        blocks = [nn.ModuleList([ResBlock(c2 + c1, c1, emb, g), SpatialTransformer(c1, ctx, hd, g)]),
                  nn.ModuleList([ResBlock(c1 + sc[0], sc[0], emb, g)])]
        ups = [Upsample(c2, c2), Upsample(c1, c1)]
        for i in range(1, len(sc)):
            ups.append(Upsample(sc[i - 1], sc[i]))
            blocks.append(nn.ModuleList([ResBlock(2 * sc[i], sc[i], emb, g)]))
        self.up = nn.ModuleList(ups)
        self.output_blocks = nn.ModuleList(blocks)
        self.out = nn.ModuleList([OutHead(c, cin, g) for c in sc])

    def forward(self, zs: list[torch.Tensor], t: torch.Tensor, context: torch.Tensor,
                self_scales: list[float | None] | None = None) -> list[torch.Tensor]:
        """zs[i]: [B, 3, s_i, s_i]; t: [B] in [0, 1]; context: [B, 77, ctx] -> v at every scale.
        self_scales: optional softmax scales of the self-attention layers in graph order (entropy scaling)."""
        ss = self_scales or [None] * 4
        emb = self.time_embed(timestep_embedding(t, self.cfg['time_freq_dim']))
        skips = [conv(z) for conv, z in zip(self.conv_in, zs)]
        a = self.input_blocks[0][0](skips[0], emb)                       # [B, c0, s0, s0]
        h = self.down[0](a)                                              # [B, c0, s0/2]
        h = self.input_blocks[1][0](h, emb)                              # [B, c1, s0/2]
        b = self.input_blocks[1][1](h, context, ss[0])                   # [B, c1, s0/2]
        h = self.down[1](b)                                              # [B, c1, s0/4]
        h = self.middle_block[0](h, emb)                                 # [B, c2, s0/4]
        h = self.middle_block[1](h, context, ss[1])
        h = self.middle_block[2](h, emb)
        h = self.up[0](h)                                                # [B, c2, s0/2]
        h = self.output_blocks[0][0](torch.cat([h, b], 1), emb)          # [B, c1, s0/2]
        h = self.output_blocks[0][1](h, context, ss[2])
        h = self.up[1](h)                                                # [B, c1, s0]
        h = self.output_blocks[1][0](torch.cat([h, a], 1), emb)          # [B, c0, s0]
        outs = [self.out[0](h)]
        for i in range(1, len(zs)):
            h = self.up[i + 1](h)                                        # [B, c_i, s_i]
            h = self.output_blocks[i + 1][0](torch.cat([h, skips[i]], 1), emb)
            outs.append(self.out[i](h))
        return outs


# ------------------------------------------------------------------------------------------------ text encoder

class CLIPAttention(nn.Module):
    def __init__(self, w: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(w, w) for _ in range(4))

    def forward(self, x):
        b, n, c = x.shape
        split = lambda t: t.view(b, n, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        o = sdpa(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)), causal=True)
        return self.out_proj(o.transpose(1, 2).reshape(b, n, c))


class CLIPMLP(nn.Module):
    def __init__(self, w: int, ratio: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(w, w * ratio), nn.Linear(w * ratio, w)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


class CLIPLayer(nn.Module):
    def __init__(self, w: int, heads: int, ratio: int):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.self_attn, self.mlp = CLIPAttention(w, heads), CLIPMLP(w, ratio)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class TextEncoder(nn.Module):
    """CLIP text transformer (causal, pre-LN, quick_gelu) over a remapped small vocabulary: CLIP ids are translated
    to rows of token_embedding by the model's vocab table (config 'vocab'); unknown ids use row 0."""

    def __init__(self, tcfg: dict):
        super().__init__()
        w = tcfg['width']
        self.embeddings = nn.Module()
        self.embeddings.token_embedding = nn.Embedding(tcfg['vocab_size'], w)
        self.embeddings.position_embedding = nn.Embedding(tcfg['max_positions'], w)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([CLIPLayer(w, tcfg['heads'], tcfg['mlp_ratio'])
                                             for _ in range(tcfg['layers'])])
        self.final_layer_norm = nn.LayerNorm(w)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """rows: [B, 77] vocabulary rows (already remapped) -> [B, 77, width]"""
        pos = torch.arange(rows.shape[1])
        x = self.embeddings.token_embedding(rows) + self.embeddings.position_embedding(pos)[None]
        for layer in self.encoder.layers:
            x = layer(x)
        return self.final_layer_norm(x)


class LayeredModel(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.diffusion_model = LayeredUNet(cfg)
        self.text_model = TextEncoder(cfg['text'])
