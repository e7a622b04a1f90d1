// The sampler table (lib/samplers/registry.ts) and the one schedule list: what derives from them agrees with what
// the samplers do, and the option layer reads the same lists.
import test from 'ava';
import { DiffusionError } from '../lib/errors.js';
import { sd15Scheduler } from '../lib/loading/defaults.js';
import { CFGPP_SAMPLERS, resolveOptions, SAMPLERS, SCHEDULES } from '../lib/options.js';
import { createSampler, listCfgppSamplers, listSamplers, SAMPLER_TABLE } from '../lib/samplers/index.js';
import { samplerForDiffusersClass } from '../lib/samplers/registry.js';
import { validateSchedule } from '../lib/schedules/index.js';

const config = sd15Scheduler();

test('names, rows and the listing functions agree', (t) => {
  t.deepEqual(Object.keys(SAMPLER_TABLE), [...SAMPLERS]);
  t.deepEqual(listSamplers(), [...SAMPLERS]);
  t.deepEqual(listCfgppSamplers(), [...CFGPP_SAMPLERS]);
  t.deepEqual([...CFGPP_SAMPLERS].sort(), ['ddim', 'dpmpp-2m', 'euler', 'euler-a']);
});

test('each sampler carries its table row: name, CFG++ support, schedule rule', (t) => {
  for (const name of SAMPLERS) {
    const s = createSampler(name, { steps: 10, config });
    t.is(s.name, name);
    t.is(s.supportsCfgpp, SAMPLER_TABLE[name].cfgpp, name);
    const karras = () => createSampler(name, { steps: 10, config, schedule: 'karras' });
    if (SAMPLER_TABLE[name].grid === 'timestep') {
      const err = t.throws(karras, { instanceOf: DiffusionError });
      t.is(err?.code, 'ERR_UNSUPPORTED');
    } else t.notThrows(karras, name);
  }
});

test('a CFG++ step on a sampler without one is refused', (t) => {
  const s = createSampler('heun', { steps: 4, config });
  const x = new Float32Array(4);
  const err = t.throws(() => s.step(x, 0, x, { uncondOutput: x }), { instanceOf: DiffusionError });
  t.is(err?.code, 'ERR_UNSUPPORTED');
});

test('every diffusers class maps back to its first row', (t) => {
  for (const name of SAMPLERS) {
    const back = samplerForDiffusersClass(SAMPLER_TABLE[name].diffusersClass);
    t.is(back, name === 'dpmpp-2m-sde' ? 'dpmpp-2m' : name);
  }
  t.is(samplerForDiffusersClass('FlowMatchEulerDiscreteScheduler'), undefined);
});

test("one schedule list; 'normal' is 'default' for the samplers and for generate()", (t) => {
  t.deepEqual([...SCHEDULES], ['default', 'karras', 'exponential', 'sgm-uniform']);
  t.is(validateSchedule('normal'), 'default');
  const a = createSampler('euler', { steps: 10, config, schedule: 'normal' });
  const b = createSampler('euler', { steps: 10, config });
  t.deepEqual(a.sigmas, b.sigmas);
  const o = resolveOptions({ prompt: '', schedule: 'normal' }, { size: 512, sampler: 'euler' });
  t.is(o.schedule, 'default');
  const err = t.throws(() =>
    resolveOptions({ prompt: '', schedule: 'linear' as never }, { size: 512, sampler: 'euler' }),
  );
  t.is(err?.message, 'Expected one of default, karras, exponential, sgm-uniform for schedule but received "linear"');
});
