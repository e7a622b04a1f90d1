// Bit-exact float32 `torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))` (checked against
// torch 1.13.1 draws in test/fixtures/rng).
//
// What torch does (aten/src/ATen/native/cpu/DistributionKernels.cpp, core/DistributionsHelper.h):
// * manual_seed(seed): seed as uint64 (negative Python ints wrap), mt19937 seeded with its low 32 bits; the
//   cached normal samples are cleared.
// * >= 16 elements (contiguous float32): `normal_fill`: every element first gets a uniform float
//   u = (random() & 0xFFFFFF) * 2^-24 (one 32-bit draw each); then in blocks of 16, for j < 8:
//   u1 = 1 - d[j], u2 = d[j+8], r = sqrt(-2 ln u1), θ = 2π u2, d[j] = r cos θ, d[j+8] = r sin θ. When the
//   size is not a multiple of 16 the last 16 elements are redrawn (16 new uniforms) and transformed again.
//   torch builds carry this kernel per CPU capability; the AVX2/AVX-512 build (every x86-64 machine of the
//   last decade) computes ln, sin and cos with avx_mathfun's float polynomials (Cephes), not libm. We
//   reproduce that build's arithmetic (lib/noise/avx-mathfun.ts) since it is the one users get.
// * < 16 elements: one scalar `normal_distribution<double>` per element: u1, u2 from 53-bit uniforms
//   (two 32-bit draws each: hi << 32 | lo), r = sqrt(-2 ln(1 - u2)), θ = 2π u1, returns r cos θ and caches
//   r sin θ for the next scalar draw (the cache lives in the generator, across calls); the double is then
//   rounded to float32.
import { invalid } from '../errors.js';
import { cosSinAvx, logAvx } from './avx-mathfun.js';
import { Mt19937 } from './mt19937.js';

const TWO_POW_NEG_24 = 2 ** -24;
const TWO_POW_NEG_53 = 2 ** -53;
const fround = Math.fround;

export class TorchGenerator {
  private engine: Mt19937;
  private nextDoubleNormal: number | undefined;
  readonly seed: bigint;

  constructor(seed: number | bigint) {
    this.seed = TorchGenerator.toUint64(seed);
    this.engine = new Mt19937(Number(this.seed & 0xffffffffn));
  }

  /** The uint64 that torch's manual_seed stores (Python ints outside [0, 2^64) are rejected there too). */
  static toUint64(seed: number | bigint): bigint {
    let s: bigint;
    if (typeof seed === 'bigint') s = seed;
    else if (typeof seed === 'number' && Number.isSafeInteger(seed)) s = BigInt(seed);
    else invalid('a safe integer or bigint', 'seed', seed);
    if (s < -(1n << 63n) || s >= 1n << 64n) invalid('a seed in [-2^63, 2^64)', 'seed', seed);
    return BigInt.asUintN(64, s);
  }

  /** Reseeds like `generator.manual_seed(seed)`. */
  manualSeed(seed: number | bigint): this {
    (this as { seed: bigint }).seed = TorchGenerator.toUint64(seed);
    this.engine = new Mt19937(Number(this.seed & 0xffffffffn));
    this.nextDoubleNormal = undefined;
    return this;
  }

  /** One 32-bit draw (`generator->random()`). */
  random(): number {
    return this.engine.next();
  }

  /** 64 bits from two draws, first one high (`random64()`), as a bigint. */
  random64(): bigint {
    const hi = this.engine.next();
    const lo = this.engine.next();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** `torch.randn(shape, generator=this)` as float32, NCHW order; advances the generator like torch. */
  randn(shape: readonly number[]): Float32Array {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      invalid('an array of non-negative integers', 'shape', shape);
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (size > 2 ** 31) invalid('at most 2^31 elements', 'shape', `[${shape.join(', ')}]`);
    const out = new Float32Array(size);
    if (size >= 16) this.normalFill(out);
    else for (let i = 0; i < size; i++) out[i] = this.scalarNormal();
    return out;
  }

  private uniformFloat(): number {
    return (this.engine.next() & 0xffffff) * TWO_POW_NEG_24;
  }

  private uniformDouble(): number {
    const hi = this.engine.next();
    const lo = this.engine.next();
    // (hi << 32 | lo) & (2^53 - 1) = (hi & 0x1FFFFF) * 2^32 + lo, exact in a double.
    return ((hi & 0x1fffff) * 4294967296 + lo) * TWO_POW_NEG_53;
  }

  private scalarNormal(): number {
    if (this.nextDoubleNormal !== undefined) {
      const v = this.nextDoubleNormal;
      this.nextDoubleNormal = undefined;
      return v;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2.0 * Math.log(1.0 - u2));
    const theta = 2.0 * Math.PI * u1;
    this.nextDoubleNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  private normalFill(data: Float32Array): void {
    const size = data.length;
    for (let i = 0; i < size; i++) data[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= size; i += 16) normalFill16(data, i);
    if (size % 16 !== 0) {
      const start = size - 16;
      for (let i = 0; i < 16; i++) data[start + i] = this.uniformFloat();
      normalFill16(data, start);
    }
  }
}

const TWO_PI_F = fround(2 * Math.PI);
const cs = new Float64Array(2);

/** One 16-element Box-Muller block of the AVX2 kernel, float32 arithmetic throughout. */
function normalFill16(d: Float32Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = fround(1 - d[at + j]);
    const u2 = d[at + j + 8];
    const radius = fround(Math.sqrt(fround(-2 * logAvx(u1))));
    const theta = fround(TWO_PI_F * u2);
    cosSinAvx(theta, cs);
    d[at + j] = fround(radius * cs[0]);
    d[at + j + 8] = fround(radius * cs[1]);
  }
}

/** `torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))`. */
export function torchRandn(shape: readonly number[], seed: number | bigint): Float32Array {
  return new TorchGenerator(seed).randn(shape);
}
