// Float32Array helpers shared across layers (core: no imports).

/** The arrays end to end in one new array, e.g. the [uncond; cond] batch of a guided U-Net call. */
export function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
