"""Synthetic captioned shapes: a generator reproducible from a seed and a checker that reads an image back.

Every scene has one to three objects (circle, square, triangle, star) in one of six colours and two sizes, on a plain
white or black background. The caption states each object's size, colour and shape and where it is:

  1 object:  "a small red circle on the left"            (left / in the middle / on the right)
  2 objects: "a large blue square left of a small green star"   or  "... above ..."
  3 objects: "a red circle, a blue square and a green star"      (listed left to right, sizes stated)

Black backgrounds append " on a black background". Geometry is defined at the 64 px top scale; `render(scene, size)`
draws at 4x and box-filters down, so any size works (the checker measures in fractions of the side).

The checker segments pixels by nearest palette colour, takes connected components, and classifies each component's
shape from its solidity (area / convex hull area: the star is the only concave shape) and its fill of the bounding box
(square 1, circle pi/4, triangle 1/2), its size from the bounding box, its position from the centroid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    'red': (220, 40, 40),
    'green': (40, 170, 60),
    'blue': (40, 80, 220),
    'yellow': (240, 210, 40),
    'purple': (150, 60, 200),
    'orange': (245, 140, 30),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {'white': (245, 245, 245), 'black': (20, 20, 20)}
SHAPES = ('circle', 'square', 'triangle', 'star')
SIZES = ('small', 'large')
TOP = 64  # the scale the geometry is defined at
SMALL_MAX_RADIUS = 8.0  # half the bounding box side at 64 px: small < 8 <= large
HPOS = ('on the left', 'in the middle', 'on the right')


@dataclass
class Obj:
    shape: str
    colour: str
    size: str
    cx: float  # centre, 64 px units
    cy: float
    r: float  # half the bounding-box side, 64 px units


@dataclass
class Scene:
    objects: list[Obj]
    background: str
    relation: str = ''  # '', 'left of', 'above', or 'row' (three objects left to right)
    caption: str = ''


def _radius(rng: np.random.Generator, size: str, count: int) -> float:
    if size == 'small':
        return float(rng.uniform(5.0, 7.0))
    return float(rng.uniform(9.0, 10.5 if count == 3 else 13.0))


def _phrase(o: Obj, with_size: bool = True) -> str:
    return f"a {o.size + ' ' if with_size else ''}{o.colour} {o.shape}"


def make_scene(seed: int, index: int) -> Scene:
    """Scene number `index` of the set drawn with `seed` (independent of any other index)."""
    rng = np.random.default_rng([seed, index])
    count = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    background = 'black' if rng.random() < 0.2 else 'white'
    colours = list(rng.choice(list(COLOURS), size=count, replace=False))
    shapes = [str(rng.choice(SHAPES)) for _ in range(count)]
    sizes = [str(rng.choice(SIZES)) for _ in range(count)]
    radii = [_radius(rng, s, count) for s in sizes]
    j = lambda a: float(rng.uniform(-a, a))  # noqa: E731 (jitter)
    objs: list[Obj] = []
    relation = ''
    if count == 1:
        slot = int(rng.integers(3))
        cx = (14.0, 32.0, 50.0)[slot] + j(2.0)
        r = radii[0]
        cx = min(max(cx, r + 1), TOP - r - 1)
        objs.append(Obj(shapes[0], colours[0], sizes[0], cx, 32.0 + j(6.0), r))
        caption = f'{_phrase(objs[0])} {HPOS[slot]}'
    elif count == 2:
        relation = 'left of' if rng.random() < 0.6 else 'above'
        for k in range(2):
            r = radii[k]
            along = (17.0, 47.0)[k] + j(2.0)
            along = min(max(along, r + 1), TOP - r - 1)
            across = 32.0 + j(5.0)
            cx, cy = (along, across) if relation == 'left of' else (across, along)
            objs.append(Obj(shapes[k], colours[k], sizes[k], cx, cy, r))
        caption = f'{_phrase(objs[0])} {relation} {_phrase(objs[1])}'
    else:
        relation = 'row'
        for k in range(3):
            r = radii[k]
            objs.append(Obj(shapes[k], colours[k], sizes[k], (11.5, 32.0, 52.5)[k] + j(0.5), 32.0 + j(6.0), r))
        caption = f'{_phrase(objs[0])}, {_phrase(objs[1])} and {_phrase(objs[2])}'
    if background == 'black':
        caption += ' on a black background'
    return Scene(objs, background, relation, caption)


def _polygon(o: Obj, scale: float) -> list[tuple[float, float]] | None:
    cx, cy, r = o.cx * scale, o.cy * scale, o.r * scale
    if o.shape == 'triangle':  # base 2r, height 2r, apex up
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if o.shape == 'star':  # five points, apex up, outer radius so that the bounding box is 2r wide
        outer = r / math.sin(math.radians(72))
        inner = outer * 0.45
        # centre the bounding box vertically: the star spans outer above and outer*cos(36) below its centre
        oy = cy + outer * (1 - math.cos(math.radians(36))) / 2
        pts = []
        for k in range(10):
            rad = outer if k % 2 == 0 else inner
            a = math.radians(-90 + 36 * k)
            pts.append((cx + rad * math.cos(a), oy + rad * math.sin(a)))
        return pts
    return None


def render(scene: Scene, size: int = TOP) -> np.ndarray:
    """uint8 [size, size, 3]: drawn at 4x the requested size and box-filtered (anti-aliased edges)."""
    big = size * 4
    scale = big / TOP
    img = Image.new('RGB', (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        fill = COLOURS[o.colour]
        poly = _polygon(o, scale)
        box = [(o.cx - o.r) * scale, (o.cy - o.r) * scale, (o.cx + o.r) * scale - 1, (o.cy + o.r) * scale - 1]
        if poly is not None:
            draw.polygon(poly, fill=fill)
        elif o.shape == 'circle':
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=fill)
    return np.asarray(img.resize((size, size), Image.BOX), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------------- checker


@dataclass
class Found:
    shape: str
    colour: str
    size: str
    cx: float  # centroid in 64 px units
    cy: float
    area: float  # pixels in 64 px units


@dataclass
class Check:
    found: list[Found] = field(default_factory=list)
    count_ok: bool = False
    colours_ok: bool = False  # the multiset of colours matches
    objects_ok: bool = False  # every expected (colour, shape) is found
    sizes_ok: bool = False
    position_ok: bool = False
    all_ok: bool = False


def _hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (Andrew's monotone chain, shoelace)."""
    pts = np.unique(points, axis=0)
    if len(pts) < 3:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def half(seq: np.ndarray) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) - (out[-1][1] - out[-2][1]) * (
                    p[0] - out[-2][0]) <= 0:
                out.pop()
            out.append(p)
        return out

    hull = np.array(half(pts)[:-1] + half(pts[::-1])[:-1], dtype=np.float64)
    x, y = hull[:, 0], hull[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean mask, each as an [n, 2] array of (row, col)."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    comps = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        stack, pix = [start], []
        seen[start] = True
        while stack:
            y, x = stack.pop()
            pix.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        comps.append(np.array(pix))
    return comps


def classify_shape(pix: np.ndarray) -> str:
    ys, xs = pix[:, 0], pix[:, 1]
    bw, bh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    fill = len(pix) / float(bw * bh)
    corners = np.concatenate([pix + d for d in ((0, 0), (0, 1), (1, 0), (1, 1))])
    solidity = len(pix) / max(_hull_area(corners.astype(np.float64)), 1.0)
    if solidity < 0.8:
        return 'star'
    if fill > 0.9:
        return 'square'
    if fill > 0.64:
        return 'circle'
    return 'triangle'


def detect(img: np.ndarray, min_area_frac: float = 0.004) -> list[Found]:
    """Objects in an RGB uint8 image of any square size (geometry reported in 64 px units)."""
    size = img.shape[0]
    unit = TOP / size
    px = img.reshape(-1, 3).astype(np.float32)
    names = list(BACKGROUNDS) + list(COLOURS)
    palette = np.array([BACKGROUNDS[n] for n in BACKGROUNDS] + [COLOURS[n] for n in COLOURS], dtype=np.float32)
    dist = ((px[:, None, :] - palette[None, :, :]) ** 2).sum(-1)
    label = dist.argmin(1).reshape(size, size)
    near = (dist.min(1) < 70.0 ** 2).reshape(size, size)  # far from every palette colour: edge blend or noise
    found: list[Found] = []
    for ci in range(len(BACKGROUNDS), len(names)):
        mask = (label == ci) & near
        for pix in _components(mask):
            if len(pix) < min_area_frac * size * size:
                continue
            ys, xs = pix[:, 0], pix[:, 1]
            r = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) * unit / 2
            found.append(Found(classify_shape(pix), names[ci], 'small' if r < SMALL_MAX_RADIUS else 'large',
                               float((xs.mean() + 0.5) * unit), float((ys.mean() + 0.5) * unit),
                               len(pix) * unit * unit))
    return found


def check(img: np.ndarray, scene: Scene) -> Check:
    """Does the image show what the scene's caption says? (count, colours, shapes, sizes, positions)"""
    found = detect(img)
    res = Check(found=found)
    res.count_ok = len(found) == len(scene.objects)
    res.colours_ok = sorted(f.colour for f in found) == sorted(o.colour for o in scene.objects)
    by_colour = {}
    for f in found:
        by_colour.setdefault(f.colour, []).append(f)
    matched: list[Found | None] = []
    for o in scene.objects:
        cands = [f for f in by_colour.get(o.colour, []) if f.shape == o.shape]
        matched.append(max(cands, key=lambda f: f.area) if cands else None)
    res.objects_ok = all(m is not None for m in matched)
    res.sizes_ok = res.objects_ok and all(m.size == o.size for m, o in zip(matched, scene.objects))
    if res.objects_ok:
        if len(scene.objects) == 1:
            slot = min(range(3), key=lambda k: abs(matched[0].cx - (14.0, 32.0, 50.0)[k]))
            res.position_ok = slot == min(range(3), key=lambda k: abs(scene.objects[0].cx - (14.0, 32.0, 50.0)[k]))
        elif scene.relation == 'left of':
            res.position_ok = matched[0].cx < matched[1].cx
        elif scene.relation == 'above':
            res.position_ok = matched[0].cy < matched[1].cy
        else:
            res.position_ok = matched[0].cx < matched[1].cx < matched[2].cx
    res.all_ok = res.count_ok and res.objects_ok and res.sizes_ok and res.position_ok
    return res


def area_downsample(img: np.ndarray, k: int) -> np.ndarray:
    """[..., H, W, C] float mean over k x k blocks (the images' operator between scales)."""
    h, w = img.shape[-3], img.shape[-2]
    return img.reshape(*img.shape[:-3], h // k, k, w // k, k, img.shape[-1]).mean(axis=(-4, -2))


def batch(seed: int, start: int, n: int, size: int = TOP) -> tuple[np.ndarray, list[str]]:
    """Images [n, size, size, 3] uint8 and captions of scenes start .. start+n-1."""
    scenes = [make_scene(seed, start + i) for i in range(n)]
    return np.stack([render(s, size) for s in scenes]), [s.caption for s in scenes]


if __name__ == '__main__':
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else '/tmp/shapes_grid.png'
    imgs, caps = batch(0, 0, 16)
    grid = imgs.reshape(4, 4, TOP, TOP, 3).transpose(0, 2, 1, 3, 4).reshape(4 * TOP, 4 * TOP, 3)
    Image.fromarray(grid).resize((8 * TOP, 8 * TOP), Image.NEAREST).save(out)
    print('\n'.join(caps))
