// Test-only torch CPU generator: mt19937 + torch.randn's float32 path for tensors of >= 16 elements
// (uniform floats from 24 random bits, Box–Muller over blocks of 16, the tail block recomputed from fresh
// draws). Used to feed the scheduler traces that passed a seeded generator to step() (euler-a, lcm).
// Box–Muller here runs in float64 then rounds, so values can differ from torch's float32 by an ulp or two.
export class TorchGenerator {
  private mt = new Uint32Array(624);
  private idx = 624;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      this.mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
      let v = mt[(i + 397) % 624] ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.idx = 0;
  }

  random(): number {
    if (this.idx >= 624) this.twist();
    let y = this.mt[this.idx++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private uniform(): number {
    return (this.random() & 0xffffff) / 16777216;
  }

  randn(n: number): Float32Array {
    if (n < 16) throw new Error('test helper covers only tensors of >= 16 elements');
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = this.uniform();
    const fill16 = (off: number) => {
      for (let j = 0; j < 8; j++) {
        const u1 = 1 - data[off + j];
        const u2 = data[off + j + 8];
        const radius = Math.sqrt(-2 * Math.log(u1));
        const theta = 2 * Math.PI * u2;
        data[off + j] = radius * Math.cos(theta);
        data[off + j + 8] = radius * Math.sin(theta);
      }
    };
    for (let i = 0; i + 16 <= n; i += 16) fill16(i);
    if (n % 16 !== 0) {
      const off = n - 16;
      for (let i = 0; i < 16; i++) data[off + i] = this.uniform();
      fill16(off);
    }
    return data;
  }
}
