// The CUDA entry points: a CPU build answers ERR_NO_CUDA "not built with CUDA"; a CUDA build
// (build-cuda/, from `npm run build:cuda`) reports its runtime and, with a GPU, checks its kernels.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import test from 'ava';
import { callNative, DiffusionError } from '../lib/errors.js';
import { packageRoot } from '../lib/native/load.js';

interface CudaInfo {
  built: boolean;
  runtimeVersion: number;
  driverVersion: number;
  devices: { index: number; name: string; computeCapability: string; totalMemory: number }[];
  error?: string;
}
interface SelfTest {
  device: string;
  gemmF16wMaxAbsErr: number;
  gemmF32wMaxAbsErr: number;
  elementwiseMaxAbsErr: number;
  gemmGflops: number;
}
interface CudaBinding {
  buildInfo(): { cuda: boolean };
  cudaInfo(): CudaInfo;
  cudaSelfTest(): SelfTest;
}

const require = createRequire(import.meta.url);
// The CPU build (node-gyp's build/Release), whatever ND_DEVICE says.
const cpu = require(join(packageRoot, 'build', 'Release', 'native_diffusion.node')) as CudaBinding;
const cudaPath = join(packageRoot, 'build-cuda', 'Release', 'native_diffusion.node');
const cuda = existsSync(cudaPath) ? (require(cudaPath) as CudaBinding) : undefined;

test('a CPU build says it was not built with CUDA (ERR_NO_CUDA)', (t) => {
  t.false(cpu.buildInfo().cuda);
  for (const fn of [() => cpu.cudaInfo(), () => cpu.cudaSelfTest()]) {
    const err = t.throws(() => callNative(fn), { instanceOf: DiffusionError });
    t.is(err?.code, 'ERR_NO_CUDA');
    t.regex(err?.message ?? '', /not built with CUDA/);
  }
});

const withCuda = cuda ? test : test.skip;

withCuda('a CUDA build reports its runtime and devices without throwing', (t) => {
  const b = cuda as CudaBinding;
  t.true(b.buildInfo().cuda);
  const info = b.cudaInfo();
  t.true(info.built);
  t.true(info.runtimeVersion >= 11000, `runtime ${info.runtimeVersion}`);
  t.true(Array.isArray(info.devices));
  if (info.devices.length === 0) t.is(typeof info.error, 'string');
  t.log(info.devices.length ? info.devices.map((d) => `${d.name} (sm ${d.computeCapability})`).join(', ') : info.error);
});

withCuda('the CUDA kernels match a double-precision reference (needs a GPU)', (t) => {
  const b = cuda as CudaBinding;
  if (b.cudaInfo().devices.length === 0) {
    const err = t.throws(() => callNative(() => b.cudaSelfTest()), { instanceOf: DiffusionError });
    t.is(err?.code, 'ERR_NO_CUDA');
    t.log('no GPU here: only the typed error was checked');
    return;
  }
  const r = b.cudaSelfTest();
  t.log(r);
  t.true(r.gemmF32wMaxAbsErr < 1e-4, `f32 GEMM error ${r.gemmF32wMaxAbsErr}`);
  t.true(r.gemmF16wMaxAbsErr < 1e-4, `f16-weight GEMM error ${r.gemmF16wMaxAbsErr}`);
  t.true(r.elementwiseMaxAbsErr < 1e-4, `elementwise error ${r.elementwiseMaxAbsErr}`);
  t.true(r.gemmGflops > 0);
});
