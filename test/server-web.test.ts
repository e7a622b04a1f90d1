// The service's web page in headless Chromium (Debian's /usr/bin/chromium through playwright-core,
// no browser download): type a prompt, see progress and the preview, get the image with its
// parameters, find it in the session gallery; a bad size shows the API's message.
import { existsSync } from 'node:fs';
import test from 'ava';
import { chromium } from 'playwright-core';
import { loadPipeline } from '../lib/load-pipeline.js';
import { FakePipeline } from './helpers/fake-pipeline.js';
import { fixture } from './helpers/fixtures.js';
import { startLocal } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';

if (!existsSync(CHROMIUM)) {
  // CI installs chromium (.ci/run): there a missing binary is a failure, not a skip.
  if (process.env.CI)
    test('web page in headless Chromium needs chromium in CI', (t) => t.fail('chromium is not installed'));
  else
    test.skip('web page in headless Chromium (skipped: /usr/bin/chromium is absent; apt-get install chromium)', () => {});
} else {
  test('web page with the real tiny model: prompt → progress → image', async (t) => {
    const pipe = await loadPipeline(fixture('models/tiny-sd1.safetensors'), {
      threads: 1,
      config: { nativeSize: 256, textEncoder: { heads: 4 } } as never,
    });
    const { service, url } = await startLocal(new Map([['tiny', pipe]]));
    t.teardown(async () => {
      await service.close(0);
      await pipe.dispose();
    });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    t.teardown(() => browser.close());
    const page = await browser.newPage();
    const steps: string[] = [];
    page.on('console', (m) => steps.push(m.text()));
    await page.goto(url);
    await page.waitForSelector('#model option[value="tiny"]', { state: 'attached' });
    t.is(await page.inputValue('#size'), '256x256');
    await page.fill('#prompt', 'a lighthouse at dusk');
    await page.selectOption('#sampler', 'euler');
    await page.fill('#steps', '6');
    await page.fill('#seed', '7');
    // record every status line the page shows while it runs
    await page.evaluate(() => {
      new MutationObserver(() => console.log(document.getElementById('status')!.textContent)).observe(
        document.getElementById('status')!,
        { childList: true, characterData: true, subtree: true },
      );
    });
    await page.click('#generate');
    await page.waitForFunction(
      () => {
        const img = document.getElementById('result') as HTMLImageElement;
        return img.complete && img.naturalWidth > 0;
      },
      undefined,
      { timeout: 30_000 },
    );
    t.is(await page.evaluate(() => (document.getElementById('result') as HTMLImageElement).naturalWidth), 256);
    t.true(
      steps.some((line) => /^Step \d+ \/ 6/.test(line)),
      steps.join(' | '),
    );
    t.regex((await page.textContent('#params')) ?? '', /Steps: 6, Sampler: euler/);
    t.is(await page.locator('#gallery figure').count(), 1);
  });

  test('web page: prompt → live progress and preview → image with parameters → gallery', async (t) => {
    const { service, url } = await startLocal(new Map([['tiny', new FakePipeline({ stepMs: 60, nativeSize: 64 })]]));
    t.teardown(() => service.close(0));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    t.teardown(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(url);
    await page.waitForSelector('#model option[value="tiny"]', { state: 'attached' });
    t.is(await page.inputValue('#size'), '64x64');
    t.is(await page.inputValue('#sampler'), 'euler');

    await page.fill('#prompt', 'a red apple on a table');
    await page.selectOption('#sampler', 'dpmpp-2m');
    await page.selectOption('#guidance', 's-cfg');
    await page.fill('#steps', '12');
    await page.fill('#seed', '42');
    await page.click('#generate');
    // live progress: a step counter and a partly filled bar while it runs
    await page.waitForFunction(() => /Step \d+ \/ 12/.test(document.getElementById('status')!.textContent ?? ''));
    const midway = await page.evaluate(() => (document.getElementById('progress') as HTMLProgressElement).value);
    t.true(midway > 0 && midway < 1, `progress ${midway}`);
    await page.waitForFunction(() =>
      (document.getElementById('preview') as HTMLImageElement).src.startsWith('data:image/png'),
    );
    // the result
    await page.waitForFunction(() => {
      const img = document.getElementById('result') as HTMLImageElement;
      return img.complete && img.naturalWidth > 0;
    });
    t.is(await page.evaluate(() => (document.getElementById('result') as HTMLImageElement).naturalWidth), 64);
    const params = await page.textContent('#params');
    t.regex(params ?? '', /a red apple on a table/);
    t.regex(params ?? '', /Steps: 12, Sampler: dpmpp-2m, Seed: 42/);
    t.regex((await page.textContent('#status')) ?? '', /^Done in/);
    t.is(await page.locator('#gallery figure').count(), 1);

    // a second image joins the gallery; the first stays
    await page.fill('#seed', '43');
    await page.fill('#steps', '2');
    await page.click('#generate');
    await page.waitForFunction(() => document.querySelectorAll('#gallery figure').length === 2);
    t.regex((await page.textContent('#gallery figure:first-child figcaption')) ?? '', /seed 43/);

    // bad input shows the API's message
    await page.selectOption('#guidance', 'cfg++');
    await page.fill('#scale', '3');
    await page.click('#generate');
    await page.waitForFunction(() => (document.getElementById('error')!.textContent ?? '').length > 0);
    t.is(await page.textContent('#error'), 'Expected a finite number in [0, 1] for guidance.scale but received 3');
    t.deepEqual(errors, []);
  });
}
