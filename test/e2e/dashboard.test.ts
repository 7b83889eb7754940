// biome-ignore-all lint/performance/useDomNodeTextContent: Playwright's innerText keeps the breaks between table cells, which the assertions read
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, chromium } from 'playwright-core';
import { packageRoot } from '../../src/core/package-root.js';
import { APPS, eventually, startTestNode, type TestNode } from '../support/nimbus.js';

/*
 * The dashboard in Debian's own Chromium (`apt-get install chromium`; never a downloaded browser),
 * driven by playwright-core against a real node. Screenshots go to test-artifacts/.
 */
const ARTIFACTS = join(packageRoot(), 'test-artifacts');

describe('web dashboard', () => {
  let node: TestNode;
  let browser: BrowserContext;
  const profile = mkdtempSync(join(tmpdir(), 'nimbus-chromium-'));
  before(async () => {
    node = await startTestNode();
    assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
    for (const path of ['/', '/log?tag=dashboard', '/throw']) await (await node.call(`/fn/echo${path}`)).arrayBuffer();
    const queued = await node.json('/async/fn/echo/', { method: 'POST' });
    await eventually(async () => (await node.json(`/api/v1/invocations/${queued.id}`)).status === 'succeeded', 60_000);
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await node.dispose();
    rmSync(profile, { recursive: true, force: true });
  });

  it('lists the deployed function, shows its live instances updating, and saves a screenshot', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    // A 404 from a route this node does not have (e.g. `…/traffic` on an older node) is expected.
    page.on('console', (m) => m.type() === 'error' && !/status of 404/.test(m.text()) && problems.push(m.text()));

    await page.goto(`${node.url}/`);
    const row = page.locator('tr[data-function="echo"]');
    await row.waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), /echo\s+warm\s+r1\s+node/);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-functions.png') });

    await row.locator('a').click();
    const instance = page.locator('tr[data-instance]').first();
    await instance.waitFor({ timeout: 30_000 });
    const requestsCell = instance.locator('[data-testid="requests"]');
    const before = Number(await requestsCell.innerText());
    assert.ok(before >= 3, `the instance served the three requests, shows ${before}`);

    // More traffic: the page polls the instances API each second and must show it without a reload.
    for (let i = 0; i < 4; i++) await (await node.call('/fn/echo/')).arrayBuffer();
    await page.waitForFunction(
      ([el, n]) => Number((el as unknown as { innerText: string }).innerText) >= (n as number),
      [await requestsCell.elementHandle(), before + 4] as const,
      { timeout: 30_000 },
    );
    // The sampler's reading arrives within a couple of seconds; then CPU and memory are shown.
    await page.waitForFunction(
      (el) => /MB|KB/.test((el as unknown as { innerText: string }).innerText),
      await instance.locator('[data-testid="memory"]').elementHandle(),
      { timeout: 30_000 },
    );
    await page.locator('[data-testid="invocations"] tbody tr').nth(3).waitFor({ timeout: 30_000 });
    assert.match(await page.locator('[data-testid="traffic"]').innerText(), /\d+ requests/);
    await page.locator('[data-testid="logs"] .log.request').first().waitFor({ timeout: 30_000 });
    assert.match(await page.locator('[data-testid="logs"]').innerText(), /log line dashboard/);
    await page.locator('[data-testid="async"]').waitFor({ timeout: 30_000 });
    assert.match(await page.locator('[data-testid="async"]').innerText(), /1\s+succeeded/);
    // Let the charts collect a few points before the picture is taken.
    await page.waitForTimeout(2500);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-function.png'), fullPage: true });
    assert.deepEqual(problems, [], 'no script errors in the page');
  });
});
