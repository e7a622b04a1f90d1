// The synthetic-shapes checker (a port of training/data.py detect/check): reads an RGB image back as objects
// (colour, shape, size, centroid) and says whether it shows what a scene's caption asks for. Pixels take the
// nearest palette colour (background or object) within distance 70; 4-connected components of one object colour
// above 0.4 % of the image are objects; the star is the only concave shape (solidity < 0.8 = area / convex hull
// of the pixel corners), else the bounding-box fill says square (> 0.9), circle (> 0.64) or triangle.
// Geometry is reported in 64 px units, whatever the image size.

export const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [240, 210, 40],
  purple: [150, 60, 200],
  orange: [245, 140, 30],
};
export const BACKGROUNDS: Record<string, [number, number, number]> = { white: [245, 245, 245], black: [20, 20, 20] };
const TOP = 64;
const SMALL_MAX_RADIUS = 8;
const SLOTS = [14, 32, 50];

export interface SceneObject {
  shape: string;
  colour: string;
  size: 'small' | 'large';
  cx: number;
  cy: number;
}
export interface Scene {
  caption: string;
  objects: SceneObject[];
  relation: '' | 'left of' | 'above' | 'row';
}
export interface Found extends SceneObject {
  area: number;
}
export interface CheckResult {
  found: Found[];
  countOk: boolean;
  coloursOk: boolean;
  objectsOk: boolean;
  sizesOk: boolean;
  positionOk: boolean;
  allOk: boolean;
}

function cross(o: number[], a: number[], b: number[]): number {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/** Area of the convex hull of integer points (monotone chain + shoelace). */
export function hullArea(points: number[][]): number {
  const key = new Set<string>();
  const pts = points
    .filter((p) => {
      const k = `${p[0]},${p[1]}`;
      if (key.has(k)) return false;
      key.add(k);
      return true;
    })
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return 0;
  const half = (seq: number[][]) => {
    const out: number[][] = [];
    for (const p of seq) {
      while (out.length >= 2 && cross(out[out.length - 2], out[out.length - 1], p) <= 0) out.pop();
      out.push(p);
    }
    return out;
  };
  const hull = [...half(pts).slice(0, -1), ...half([...pts].reverse()).slice(0, -1)];
  let s = 0;
  for (let i = 0; i < hull.length; i++) {
    const [x1, y1] = hull[i],
      [x2, y2] = hull[(i + 1) % hull.length];
    s += x1 * y2 - y1 * x2;
  }
  return Math.abs(s) / 2;
}

export function classifyShape(pix: Array<[number, number]>): string {
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (const [y, x] of pix) {
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  const fill = pix.length / ((x1 - x0 + 1) * (y1 - y0 + 1));
  const corners: number[][] = [];
  for (const [y, x] of pix) corners.push([y, x], [y, x + 1], [y + 1, x], [y + 1, x + 1]);
  const solidity = pix.length / Math.max(hullArea(corners), 1);
  if (solidity < 0.8) return 'star';
  if (fill > 0.9) return 'square';
  if (fill > 0.64) return 'circle';
  return 'triangle';
}

/** Objects in an RGB (HWC) square image of side `size`. */
export function detect(rgb: Uint8Array, size: number, minAreaFrac = 0.004): Found[] {
  const unit = TOP / size;
  const names = [...Object.keys(BACKGROUNDS), ...Object.keys(COLOURS)];
  const palette = [...Object.values(BACKGROUNDS), ...Object.values(COLOURS)];
  const nb = Object.keys(BACKGROUNDS).length;
  const label = new Int8Array(size * size).fill(-1);
  for (let p = 0; p < size * size; p++) {
    let best = -1,
      bestD = 70 * 70;
    for (let c = 0; c < palette.length; c++) {
      const dr = rgb[3 * p] - palette[c][0],
        dg = rgb[3 * p + 1] - palette[c][1],
        db = rgb[3 * p + 2] - palette[c][2];
      const d = dr * dr + dg * dg + db * db;
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    label[p] = best;
  }
  const seen = new Uint8Array(size * size);
  const found: Found[] = [];
  for (let start = 0; start < size * size; start++) {
    const c = label[start];
    if (c < nb || seen[start]) continue;
    const stack = [start];
    const pix: Array<[number, number]> = [];
    seen[start] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      const y = Math.floor(p / size),
        x = p % size;
      pix.push([y, x]);
      const nbrs = [y > 0 ? p - size : -1, y < size - 1 ? p + size : -1, x > 0 ? p - 1 : -1, x < size - 1 ? p + 1 : -1];
      for (const q of nbrs) {
        if (q >= 0 && !seen[q] && label[q] === c) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    if (pix.length < minAreaFrac * size * size) continue;
    let x0 = Infinity,
      x1 = -Infinity,
      y0 = Infinity,
      y1 = -Infinity,
      sx = 0,
      sy = 0;
    for (const [y, x] of pix) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
      sx += x;
      sy += y;
    }
    const r = (Math.max(x1 - x0 + 1, y1 - y0 + 1) * unit) / 2;
    found.push({
      shape: classifyShape(pix),
      colour: names[c],
      size: r < SMALL_MAX_RADIUS ? 'small' : 'large',
      cx: (sx / pix.length + 0.5) * unit,
      cy: (sy / pix.length + 0.5) * unit,
      area: pix.length * unit * unit,
    });
  }
  return found;
}

const slotOf = (x: number) => SLOTS.reduce((best, s, k) => (Math.abs(x - s) < Math.abs(x - SLOTS[best]) ? k : best), 0);

export function check(rgb: Uint8Array, size: number, scene: Scene): CheckResult {
  const found = detect(rgb, size);
  const want = scene.objects;
  const countOk = found.length === want.length;
  const coloursOk =
    JSON.stringify(found.map((f) => f.colour).sort()) === JSON.stringify(want.map((o) => o.colour).sort());
  const matched = want.map((o) => {
    const cands = found.filter((f) => f.colour === o.colour && f.shape === o.shape);
    return cands.length ? cands.reduce((a, b) => (b.area > a.area ? b : a)) : undefined;
  });
  const objectsOk = matched.every((m) => m !== undefined);
  const sizesOk = objectsOk && matched.every((m, i) => m!.size === want[i].size);
  let positionOk = false;
  if (objectsOk) {
    const m = matched as Found[];
    if (want.length === 1) positionOk = slotOf(m[0].cx) === slotOf(want[0].cx);
    else if (scene.relation === 'left of') positionOk = m[0].cx < m[1].cx;
    else if (scene.relation === 'above') positionOk = m[0].cy < m[1].cy;
    else positionOk = m[0].cx < m[1].cx && m[1].cx < m[2].cx;
  }
  return {
    found,
    countOk,
    coloursOk,
    objectsOk,
    sizesOk,
    positionOk,
    allOk: countOk && objectsOk && sizesOk && positionOk,
  };
}

/** Box-filter resample of an RGB (HWC) square image to 64 px (integer factor down, or nearest up). */
export function toCheckerSize(rgb: Uint8Array, size: number): Uint8Array {
  if (size === TOP) return rgb;
  const out = new Uint8Array(TOP * TOP * 3);
  if (size > TOP) {
    const k = size / TOP;
    for (let y = 0; y < TOP; y++)
      for (let x = 0; x < TOP; x++)
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let dy = 0; dy < k; dy++)
            for (let dx = 0; dx < k; dx++) s += rgb[((y * k + dy) * size + x * k + dx) * 3 + c];
          out[(y * TOP + x) * 3 + c] = Math.round(s / (k * k));
        }
  } else {
    const k = TOP / size;
    for (let y = 0; y < TOP; y++)
      for (let x = 0; x < TOP; x++)
        for (let c = 0; c < 3; c++) {
          out[(y * TOP + x) * 3 + c] = rgb[(Math.floor(y / k) * size + Math.floor(x / k)) * 3 + c];
        }
  }
  return out;
}
