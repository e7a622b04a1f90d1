// Scalar float32 re-statement of the two functions torch's AVX2 `normal_fill` kernel uses from avx_mathfun.h
// (Cephes-style log and sincos polynomials by J. Pommier / G. Garberoglio, zlib licence), step by step in
// float32 so the rounding matches the vector code. torch is built with GCC, which contracts a multiply whose
// only use is an add into one fused multiply-add; `FMA` below marks the places where that happens (an exact
// product followed by one rounding). The choice was settled by the torch draws in test/fixtures/rng.
const f = Math.fround;

/** float32 fused multiply-add a*b + c with one rounding (a, b, c float32). */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 + 24 bits fit a double
  const s = p + c;
  // TwoSum: s + t == p + c exactly.
  const bb = s - p;
  const t = p - (s - bb) + (c - bb);
  const r = f(s);
  if (t === 0 || r === s) return r;
  // s was rounded to r; when s lies exactly half-way between two floats the sign of t decides.
  const other = s > r ? nextUp(r) : nextDown(r);
  const mid = (r + other) / 2;
  if (s !== mid) return r;
  return t > 0 === other > r ? other : r;
}

const buf = new Float32Array(1);
const bits = new Int32Array(buf.buffer);
function nextUp(x: number): number {
  buf[0] = x;
  if (x >= 0) bits[0] += 1;
  else bits[0] -= 1;
  return buf[0];
}
function nextDown(x: number): number {
  buf[0] = x;
  if (x > 0) bits[0] -= 1;
  else if (x === 0) return -(2 ** -149);
  else bits[0] += 1;
  return buf[0];
}

const SQRTHF = f(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f);
const LOG_Q1 = f(-2.1219444e-4);
const LOG_Q2 = f(0.693359375);

/** log256_ps for one lane (x > 0, float32). */
export function logAvx(xIn: number): number {
  if (!(xIn > 0)) return Number.NaN;
  buf[0] = Math.max(xIn, 2 ** -126);
  const exponent = (bits[0] >>> 23) - 0x7f;
  bits[0] = (bits[0] & ~0x7f800000) | 0x3f000000; // mantissa in [0.5, 1)
  let x = buf[0];
  let e = f(exponent + 1);
  if (x < SQRTHF) {
    e = f(e - 1);
    x = f(f(x - 1) + x);
  } else {
    x = f(x - 1);
  }
  const z = f(x * x);
  let y = LOG_P[0];
  for (let k = 1; k < 9; k++) y = fmaf(y, x, LOG_P[k]); // FMA
  y = f(y * x);
  y = fmaf(y, z, f(e * LOG_Q1)); // FMA: y*z + (e*q1 rounded)
  y = f(y - f(z * 0.5));
  return fmaf(e, LOG_Q2, f(x + y)); // FMA (e*q2 is exact anyway)
}

const DP1 = f(-0.78515625);
const DP2 = f(-2.4187564849853515625e-4);
const DP3 = f(-3.77489497744594108e-8);
const SINCOF = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);
const COSCOF = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);
const FOPI = f(1.27323954473516);

/** sincos256_ps for one lane: out[0] = cos(x), out[1] = sin(x), float32. */
export function cosSinAvx(xIn: number, out: Float64Array): void {
  const negative = xIn < 0 || Object.is(xIn, -0);
  let x = Math.abs(xIn);
  let j = Math.trunc(f(x * FOPI)) | 0;
  j = (j + 1) & ~1;
  const y = f(j);
  const swapSin = (j & 4) !== 0;
  const sinPoly = (j & 2) === 0; // polynomial selection: sine series when true
  const cosNegative = (~(j - 2) & 4) !== 0;
  x = fmaf(y, DP1, x); // FMA
  x = fmaf(y, DP2, x); // FMA
  x = fmaf(y, DP3, x); // FMA
  const z = f(x * x);
  let c = fmaf(COSCOF[0], z, COSCOF[1]); // FMA
  c = fmaf(c, z, COSCOF[2]); // FMA
  c = f(c * z);
  c = fmaf(c, z, -f(z * 0.5)); // FMA: c*z - z/2
  c = f(c + 1);
  let s = fmaf(SINCOF[0], z, SINCOF[1]); // FMA
  s = fmaf(s, z, SINCOF[2]); // FMA
  s = f(s * z);
  s = fmaf(s, x, x); // FMA
  let sinV = sinPoly ? s : c;
  let cosV = sinPoly ? c : s;
  if (negative !== swapSin) sinV = -sinV;
  if (cosNegative) cosV = -cosV;
  out[0] = cosV;
  out[1] = sinV;
}
