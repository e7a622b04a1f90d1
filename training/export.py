"""Export a trained run to our model format and write the native parity fixture.

  python3 training/export.py --run /tmp/layered-runs/layered --out models/default \
      --fixture test/fixtures/layered/parity.safetensors

models/default/model.safetensors: the EMA weights in f32 (or --dtype f16), keys
  model.diffusion_model.<LayeredUNet parameter>                       (training/README.md lists the graph)
  cond_stage_model.transformer.text_model.<TextEncoder parameter>     (CLIP-architecture, remapped vocabulary)
models/default/config.json: the training config ("format": "native-diffusion-layered", scales, channels, schedule,
  text encoder, vocab = the CLIP ids the token_embedding rows 1.. stand for; row 0 = any other id) plus "weights".

The fixture holds inputs and PyTorch outputs of the exported weights: case `sq` (batch 2, 64x64, two captions),
case `ns` (batch 1, 48x80 non-square, entropy-scaled self-attention with the logged scales), each with
ids [B,77] (CLIP ids), t [B], z{i} per scale, context [B,77,width], v{i} per scale.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
from sample import entropy_scales, load  # noqa: E402
from tokenizer import ClipBPE, rows_of  # noqa: E402

PREFIX_UNET = 'model.diffusion_model.'
PREFIX_TEXT = 'cond_stage_model.transformer.text_model.'
DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.int32: 'I32', torch.int64: 'I64'}


def write_safetensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    header: dict = {'__metadata__': metadata} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def export_weights(net: M.LayeredModel, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in net.diffusion_model.state_dict().items():
        out[PREFIX_UNET + k] = v.detach().to(dtype)
    for k, v in net.text_model.state_dict().items():
        out[PREFIX_TEXT + k] = v.detach().to(dtype)
    return out


@torch.no_grad()
def fixture_case(net, cfg, bpe, captions, t, height, width, entropy, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([bpe.window(c) for c in captions], dtype=torch.int64)
    rows = torch.tensor([rows_of(r, cfg['vocab']) for r in ids.tolist()], dtype=torch.long)
    top = cfg['scales'][-1]
    zs = [torch.randn(len(captions), 3, height * s // top, width * s // top, generator=gen) for s in cfg['scales']]
    tt = torch.tensor(t, dtype=torch.float32)
    ctx = net.text_model(rows)
    scales = entropy_scales(cfg, height, width) if entropy else None
    vs = net.diffusion_model(zs, tt, ctx, scales)
    out = {'ids': ids.to(torch.int32), 't': tt, 'context': ctx}
    for i, (z, v) in enumerate(zip(zs, vs)):
        out[f'z{i}'], out[f'v{i}'] = z, v
    if scales is not None:
        out['self_attention_scales'] = torch.tensor(scales, dtype=torch.float32)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', required=True)
    ap.add_argument('--out', default='models/default')
    ap.add_argument('--dtype', choices=['f32', 'f16'], default='f32')
    ap.add_argument('--fixture')
    ap.add_argument('--steps', type=int, default=20, help='recommended sampler steps written to config.json')
    ap.add_argument('--guidance', type=float, default=3.0, help='recommended CFG scale written to config.json')
    args = ap.parse_args()
    torch.set_num_threads(1)
    net, cfg, step = load(args.run)
    dtype = torch.float16 if args.dtype == 'f16' else torch.float32
    tensors = export_weights(net, dtype)
    write_safetensors(os.path.join(args.out, 'model.safetensors'), tensors,
                      {'format': 'native-diffusion-layered', 'training_steps': str(step)})
    config = dict(cfg, weights='model.safetensors', training_steps=step, dtype=args.dtype,
                  sampler={'type': 'ddim', 'steps': args.steps, 'guidance': args.guidance})
    with open(os.path.join(args.out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=1)
    print('exported', len(tensors), 'tensors', sum(t.numel() for t in tensors.values()), 'parameters, step', step)
    if args.fixture:
        if dtype != torch.float32:  # the fixture must use exactly the exported (rounded) weights
            net.load_state_dict({k: v.float() for k, v in net.state_dict().items()})
            for p in net.parameters():
                p.data = p.data.to(dtype).float()
        bpe = ClipBPE()
        fx = {}
        for name, case in {
            'sq': fixture_case(net, cfg, bpe, ['a small red circle on the left', ''], [0.7, 0.3], 64, 64, False, 1),
            'ns': fixture_case(net, cfg, bpe, ['a large blue star above a small green square, a tiger'], [0.45],
                               48, 80, True, 2),
        }.items():
            for k, v in case.items():
                fx[f'{name}.{k}'] = v
        # whole sampler: 4 DDIM steps, CFG 3, from given noise (checks the TS sampler + sinc + native U-Net chain)
        from sample import sample
        ids = torch.tensor([bpe.window('a large yellow star on the right')], dtype=torch.int64)
        rows = torch.tensor([rows_of(ids[0].tolist(), cfg['vocab'])])
        unc = torch.tensor([rows_of(bpe.window(''), cfg['vocab'])])
        noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
        fx['sample.ids'] = ids.to(torch.int32)
        fx['sample.noise'] = noise
        fx['sample.x0'] = sample(net, cfg, rows, unc, steps=4, guidance=3.0, z0=noise)
        write_safetensors(args.fixture, fx)
        print('fixture', args.fixture, len(fx), 'tensors')


if __name__ == '__main__':
    main()
