// The platform check that runs under emulation (tools/emulated-tests.sh: qemu-aarch64 for
// linux-arm64, wine for win32-x64) and natively for the x64 reference. Plain JavaScript with no
// dependencies, so the target's own Node runs it without tsx or ava (whose esbuild has no binary
// for the emulated target). Small shapes: qemu runs NEON loops ~75x slower than hardware.
//
//   node platform-check.mjs kernels <addon>                kernel checks vs the double-precision references
//                                                          (the addon with opsGemm/opsMisc: .node or .devnode)
//   node platform-check.mjs generate <out.json>            tiny generation with the embedded model, through
//                                                          the installed package's loader (import 'native-diffusion')
//
// Prints one line per check and a closing "N passed, N failed" line; exits 1 on any failure.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const results = [];
function check(name, fn) {
  try {
    const detail = fn();
    results.push({ name, ok: true });
    console.log(`ok ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    results.push({ name, ok: false });
    console.log(`not ok ${name}: ${err.message}`);
  }
}
function finish() {
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

/** Deterministic uniform values in [-scale, scale) (mulberry32, as test/helpers). */
function randomArray(n, seed, scale = 1) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}
function maxDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}
const maxAbs = (a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
// The GEMM tolerance of test/helpers/ops-gemm.ts: f32 dot-product rounding grows with sqrt(K).
const dotTol = (K, x, w) => 1e-5 * Math.sqrt(Math.max(K, 1)) * Math.max(x, 1e-3) * Math.max(w, 1e-3) + 1e-6;
function within(what, d, tol) {
  if (!(d <= tol)) throw new Error(`${what}: ${d} > ${tol}`);
  return d;
}

function kernels(binaryPath) {
  // process.dlopen, not require: the test bindings may live in a development addon (.devnode).
  const binding = { exports: {} };
  process.dlopen(binding, resolve(binaryPath));
  const { opsGemm, opsMisc } = binding.exports;
  const best = opsGemm.cpuFeatures().best;
  const gemmIsas = [best, ...(best === 'scalar' ? [] : ['scalar'])];
  const miscIsas = opsMisc.kernelIsas().available;
  console.log(`# ${process.platform}-${process.arch}: gemm ${gemmIsas.join(', ')}; kernels ${miscIsas.join(', ')}`);
  check(`best ISA on ${process.arch}`, () => {
    const want = process.arch === 'arm64' ? 'neon' : undefined;
    if (want && (best !== want || !miscIsas.includes(want)))
      throw new Error(`expected ${want}, got ${best} / ${miscIsas}`);
    return best;
  });
  for (const isa of gemmIsas) {
    for (const dtype of ['F32', 'F16', 'BF16'])
      check(`linear ${isa} ${dtype}`, () => {
        let seed = 1;
        let worst = 0;
        for (const [M, N, K] of [
          [1, 77, 5],
          [3, 40, 130],
          [14, 32, 256],
          [37, 45, 300],
          [20, 100, 64],
        ])
          for (const threads of [1, 2]) {
            const x = randomArray(M * K, seed++);
            const w = randomArray(N * K, seed++);
            const bias = randomArray(N, seed++);
            const args = { x, M, K, w, dtype, N, bias, threads, isa };
            const d = maxDiff(opsGemm.linear(args), opsGemm.linear({ ...args, reference: true }));
            worst = Math.max(worst, within(`M=${M} N=${N} K=${K}`, d, dotTol(K, maxAbs(x), maxAbs(w))));
          }
        return `max diff ${worst.toExponential(2)}`;
      });
    check(`gemm ${isa} all transposes`, () => {
      let seed = 100;
      for (const [M, N, K] of [
        [7, 33, 17],
        [45, 31, 260],
      ])
        for (const transA of [false, true])
          for (const transB of [false, true]) {
            const A = randomArray(M * K, seed++);
            const B = randomArray(K * N, seed++);
            const C = randomArray(M * N, seed++);
            const args = { transA, transB, M, N, K, alpha: 0.75, A, B, beta: 0.5, C, threads: 2, isa };
            const d = maxDiff(opsGemm.gemm(args), opsGemm.gemm({ ...args, reference: true }));
            within(`${M}x${N}x${K} ${transA}/${transB}`, d, dotTol(K, 1, 1) + 1e-6);
          }
    });
    check(`conv2d ${isa}`, () => {
      let seed = 200;
      for (const s of [
        { B: 1, Cin: 5, H: 9, W: 7, Cout: 13, kh: 3, kw: 3, stride: 1, pad: 1 },
        { B: 2, Cin: 8, H: 6, W: 6, Cout: 16, kh: 1, kw: 1, stride: 1, pad: 0 },
        { B: 1, Cin: 4, H: 11, W: 10, Cout: 9, kh: 3, kw: 3, stride: 2, pad: 1 },
      ]) {
        const x = randomArray(s.B * s.Cin * s.H * s.W, seed++);
        const w = randomArray(s.Cout * s.Cin * s.kh * s.kw, seed++);
        const bias = randomArray(s.Cout, seed++);
        const args = { ...s, x, w, dtype: 'F32', bias, threads: 2, isa };
        const K = s.Cin * s.kh * s.kw;
        within(
          JSON.stringify(s),
          maxDiff(opsGemm.conv2d(args), opsGemm.conv2d({ ...args, reference: true })),
          dotTol(K, 1, 1) + 1e-6,
        );
      }
    });
  }
  for (const isa of miscIsas) {
    check(`attention ${isa}`, () => {
      for (const c of [
        { batch: 1, heads: 2, nq: 37, nk: 29, headDim: 40 },
        { batch: 2, heads: 1, nq: 65, nk: 77, headDim: 16 },
      ]) {
        const C = c.heads * c.headDim;
        const args = {
          ...c,
          q: randomArray(c.batch * c.nq * C, 7),
          k: randomArray(c.batch * c.nk * C, 8),
          v: randomArray(c.batch * c.nk * C, 9),
          scale: 1 / Math.sqrt(c.headDim),
          probs: true,
          threads: 2,
          isa,
        };
        const got = opsMisc.attention(args);
        const ref = opsMisc.attention({ ...args, reference: true });
        // Logits here are at most sqrt(headDim) (|q|, |k| <= 1): the stated 1e-6 + 4e-7·L bound.
        const L = Math.sqrt(c.headDim);
        within('out', maxDiff(got.out, ref.out), 1e-6 + 4e-7 * L);
        within('probs', maxDiff(got.probs, ref.probs), 5e-7 + 4e-7 * L);
      }
    });
    check(`group norm + silu ${isa}`, () => {
      const c = { B: 2, C: 64, HW: 63, groups: 32 };
      const args = {
        ...c,
        x: randomArray(c.B * c.C * c.HW, 3, 3),
        gamma: randomArray(c.C, 1, 2),
        beta: randomArray(c.C, 2),
        eps: 1e-5,
        silu: true,
        threads: 2,
        isa,
      };
      within('y', maxDiff(opsMisc.groupNorm(args), opsMisc.groupNorm({ ...args, reference: true })), 1e-5);
    });
    check(`layer norm ${isa}`, () => {
      const args = { x: randomArray(77 * 96, 4, 3), M: 77, C: 96, gamma: randomArray(96, 5), beta: randomArray(96, 6) };
      const a = { ...args, eps: 1e-5, threads: 2, isa };
      within('y', maxDiff(opsMisc.layerNorm(a), opsMisc.layerNorm({ ...a, reference: true })), 1e-5);
    });
    check(`softmax, silu, gelu, geglu ${isa}`, () => {
      const x = randomArray(13 * 77, 11, 8);
      const sm = { x, rows: 13, cols: 77, isa };
      within('softmax', maxDiff(opsMisc.softmaxRows(sm), opsMisc.softmaxRows({ ...sm, reference: true })), 1e-6);
      for (const op of ['silu', 'gelu', 'quick_gelu']) {
        const a = { op, x, isa };
        const ref = opsMisc.activation({ ...a, reference: true });
        within(op, maxDiff(opsMisc.activation(a), ref), 1e-6 + 1e-6 * maxAbs(ref));
      }
      const g = { x: randomArray(9 * 2 * 40, 12, 3), M: 9, N: 40, isa };
      within('geglu', maxDiff(opsMisc.geglu(g), opsMisc.geglu({ ...g, reference: true })), 4e-6);
    });
  }
  finish();
}

async function generate(out) {
  const { loadLayeredPipeline, buildInfo } = await import('native-diffusion');
  check('loader picks a binary', () => JSON.stringify(buildInfo()));
  const pipe = await loadLayeredPipeline(undefined, { threads: 2 });
  const t0 = Date.now();
  const { image } = await pipe.generate({ prompt: 'a red circle', width: 32, height: 32, steps: 3, seed: 7 });
  const ms = Date.now() - t0;
  pipe.dispose();
  check('tiny generation (32x32, 3 steps)', () => {
    if (image.data.length !== 32 * 32 * 3) throw new Error(`got ${image.data.length} bytes`);
    return `${ms} ms`;
  });
  writeFileSync(
    out,
    JSON.stringify({
      platform: `${process.platform}-${process.arch}`,
      ms,
      rgb: Buffer.from(image.data).toString('base64'),
    }),
  );
  finish();
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'kernels') kernels(arg);
else if (mode === 'generate') await generate(arg);
else {
  console.error('usage: platform-check.mjs kernels <binary.node> | generate <out.json>');
  process.exitCode = 2;
}
