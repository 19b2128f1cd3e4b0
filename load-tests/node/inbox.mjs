// The inbox benchmark's browser half (`BENCH_ONLY=inbox20k`, issue 16): one
// headless Chromium (Debian's, driven by playwright-core as e2e/run.mjs does,
// from e2e's node_modules) signs in to a practice the Rust half filled with
// BENCH_INBOX_N referrals and measures, from pressing "Sign in" (the unlock:
// Argon2id, unwrapping the keys):
//   first_rows_ms        until 50 rows of Received are shown;
//   search_ready_ms      until a search by patient name matches every referral
//                        (every row's name is known);
//   heap_mb              the tab's heap then: js_heap_mb (CDP Runtime.getHeapUsage,
//                        after a collection) plus wasm_mb, the WebAssembly memory
//                        (which the JS heap figure leaves out);
//   search_ready_reload_ms after a reload, from pressing "Unlock" to the same.
// With BENCH_PROFILE=<file> it writes Chromium's CPU profile of the first visit.
// Prints one JSON line.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(new URL('../../e2e/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const url = process.env.BENCH_URL;
const email = process.env.BENCH_EMAIL;
const password = process.env.BENCH_PASSWORD;
const n = Number(process.env.BENCH_INBOX_N);
const T = Number(process.env.BENCH_TIMEOUT_MS || 600000);
const profile = process.env.BENCH_PROFILE;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'],
});
const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
const page = await ctx.newPage();
page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
const cdp = await ctx.newCDPSession(page);
if (profile) {
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
}

async function rowsShown(min) {
  await page.waitForFunction((m) => document.querySelectorAll('[data-testid=referral-row]').length >= m, min, { timeout: T, polling: 20 });
}

// Every row matches the search: the list says "Showing 100 of N", or shows all N.
async function searchReady() {
  await page.fill('#f-search', 'bench patient');
  await page.waitForFunction(
    (total) => document.body.innerText.includes(`of ${total}.`) || document.querySelectorAll('[data-testid=referral-row]').length >= total,
    n,
    { timeout: T, polling: 50 },
  );
}

await page.goto(`${url}/login`);
await page.fill('#login-email', email);
await page.fill('#login-password', password);
if (profile) await cdp.send('Profiler.start');
const t0 = Date.now();
await page.click('button[type=submit]');
await page.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
if (!page.url().endsWith('/inbox')) await page.click('a.navlink:has-text("Received")');
await rowsShown(Math.min(50, n));
const first_rows_ms = Date.now() - t0;
await searchReady();
const search_ready_ms = Date.now() - t0;
if (profile) {
  const { profile: p } = await cdp.send('Profiler.stop');
  writeFileSync(profile, JSON.stringify(p));
}
await cdp.send('HeapProfiler.collectGarbage').catch(() => {});
const heap = await cdp.send('Runtime.getHeapUsage');
const js_heap_mb = heap.usedSize / 1048576;
// The WebAssembly memory, which Runtime.getHeapUsage leaves out (the client's
// whole Rust heap lives there): every WebAssembly.Memory object of the page,
// found through the heap (Runtime.queryObjects), its buffer's size summed.
const wasm_mb = await (async () => {
  const { result: proto } = await cdp.send('Runtime.evaluate', { expression: 'WebAssembly.Memory.prototype' });
  const { objects } = await cdp.send('Runtime.queryObjects', { prototypeObjectId: proto.objectId });
  const { result } = await cdp.send('Runtime.callFunctionOn', {
    objectId: objects.objectId,
    functionDeclaration: 'function () { return this.reduce((sum, m) => sum + m.buffer.byteLength, 0); }',
    returnByValue: true,
  });
  return result.value / 1048576;
})();
// The tab's heap: the JS heap and the wasm memory together.
const heap_mb = js_heap_mb + wasm_mb;

await page.reload();
await page.waitForSelector('#unlock-password', { timeout: T });
await page.fill('#unlock-password', password);
const t1 = Date.now();
await page.click('button:has-text("Unlock")');
await page.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
if (!page.url().endsWith('/inbox')) await page.click('a.navlink:has-text("Received")');
await rowsShown(Math.min(50, n));
const first_rows_reload_ms = Date.now() - t1;
await searchReady();
const search_ready_reload_ms = Date.now() - t1;

console.log(JSON.stringify({ n, first_rows_ms, search_ready_ms, heap_mb, js_heap_mb, wasm_mb, first_rows_reload_ms, search_ready_reload_ms }));
await browser.close();
