// Browser tests for the Handoff web client: the real `handoff` server with a
// fresh embedded store, Debian's chromium driven by playwright-core, separate
// browser contexts for a referring MOA, a specialist and a staff member.
//
// Environment (set by `cargo xtask test`): HANDOFF_BIN, HANDOFF_WEB,
// CHROMIUM, SCREENSHOTS. Prints `e2e: N passed, N failed` last.

import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import assert from 'node:assert/strict';

const BIN = process.env.HANDOFF_BIN;
const WEB = process.env.HANDOFF_WEB;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS || 'target/screenshots';
const T = 30_000; // generous: Argon2id runs in wasm, and these machines are shared

let passed = 0;
let failed = 0;

// Content Security Policy violations seen since the running scenario began.
// Every browser context reports them twice over: an init script forwards each
// `securitypolicyviolation` event to the console, and Chromium's own console
// line ("Refused to ... because it violates the following Content Security
// Policy directive") is caught as well. A scenario with one fails, naming the directive.
const cspViolations = [];

function isCspViolation(text) {
  return /Content Security Policy|Refused to (apply|load|execute|connect|frame|evaluate|compile|create)|CSP violation:/.test(text);
}

async function watchCsp(ctx) {
  await ctx.addInitScript(() => {
    window.addEventListener(
      'securitypolicyviolation',
      (e) => console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile || 'the page'}:${e.lineNumber}`),
      true,
    );
  });
  ctx.on('page', (page) =>
    page.on('console', (msg) => {
      const text = msg.text();
      if (isCspViolation(text)) cspViolations.push(`${page.url()}: ${text}`);
    }),
  );
}

async function test(name, fn) {
  const t0 = Date.now();
  cspViolations.length = 0;
  try {
    await fn();
    if (cspViolations.length > 0) {
      const directives = [...new Set(cspViolations.map((v) => (v.match(/CSP violation: (\S+)/) || v.match(/directive:? "([^"]+)"/) || [])[1]).filter(Boolean))];
      const shown = cspViolations.slice(0, 6).join('\n  ') + (cspViolations.length > 6 ? `\n  … and ${cspViolations.length - 6} more` : '');
      throw new Error(`Content Security Policy violated (${directives.join(', ') || 'directive not named'}):\n  ${shown}`);
    }
    passed++;
    console.log(`ok - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n${e && e.stack ? e.stack : e}`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// A real SMTP server (Debian's aiosmtpd) delivering into a Maildir: every
// mail the server sends in these tests goes through it.
async function startSmtp() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'handoff-e2e-mail-'));
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(dir, sub), { recursive: true });
  const child = spawn('/usr/bin/python3', ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.end(() => resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null) throw new Error(`aiosmtpd exited with ${child.exitCode} (install python3-aiosmtpd)`);
    if (Date.now() > deadline) throw new Error('aiosmtpd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `smtp://127.0.0.1:${port}`, dir, stop: () => child.kill('SIGTERM') };
}

// `config` (optional): TOML settings for this server only (a block that needs
// a short `session_idle_secs` starts its own server with them).
async function startServer(config) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'handoff-e2e-'));
  const url = `http://127.0.0.1:${port}`;
  const smtp = await startSmtp();
  const configEnv = {};
  if (config) {
    const file = join(mkdtempSync(join(tmpdir(), 'handoff-e2e-config-')), 'handoff.toml');
    writeFileSync(file, config);
    configEnv.HANDOFF_CONFIG = file;
  }
  const launch = async () => {
    const child = spawn(BIN, ['serve', '--bind', `127.0.0.1:${port}`, '--data', data, '--static-dir', WEB, '--public-url', url], {
      env: { ...process.env, RUST_LOG: 'warn', HANDOFF_SMTP_URL: smtp.url, ...configEnv },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const r = await fetch(`${url}/healthz`);
        if (r.ok) return child;
      } catch {}
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('server did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  let child = await launch();
  const killed = () => new Promise((resolve) => (child.exitCode !== null || child.signalCode ? resolve() : child.once('exit', resolve)));
  return {
    url,
    data,
    mail: smtp.dir,
    admin: (...args) => execFileSync(BIN, ['admin', '--data', data, ...args], { stdio: ['ignore', 'pipe', 'inherit'] }).toString(),
    // SIGKILL: no graceful goodbye to the sockets; the store must carry everything.
    crash: async () => {
      child.kill('SIGKILL');
      await killed();
    },
    restart: async () => {
      child = await launch();
    },
    stop: () => {
      child.kill('SIGTERM');
      smtp.stop();
      rmSync(smtp.dir, { recursive: true, force: true });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

// Every mail the SMTP server has received (its Maildir), unfolded.
function folderMail(maildir) {
  const dir = join(maildir, 'new');
  return (existsSync(dir) ? readdirSync(dir).sort() : []).map((f) =>
    readFileSync(join(dir, f), 'utf8').replace(/=\r?\n/g, '').replace(/=3D/g, '='),
  );
}

// Waits for a mail to `email` whose text matches `re` and returns the match.
// (Maildir names do not sort by arrival: each test address gets one such mail.)
async function mailed(maildir, email, re, what) {
  const deadline = Date.now() + T;
  for (;;) {
    for (const raw of folderMail(maildir)) {
      if (!raw.includes(`To: ${email}`)) continue;
      const m = raw.match(re);
      if (m) return m;
    }
    if (Date.now() > deadline) throw new Error(`no ${what} mailed to ${email}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// The link to `/<kind>/<token>` mailed to `email`.
async function mailedLink(maildir, email, kind) {
  return (await mailed(maildir, email, new RegExp(`https?://[^\\s"<>]+/${kind}/[A-Za-z0-9_-]+`), `/${kind}/ link`))[0];
}

// The free referral code mailed to `email`.
async function mailedCode(maildir, email) {
  return (await mailed(maildir, email, /Your Handoff code is (\d{6})/, 'code'))[1];
}

// Signs `page` in with a password and waits for the live connection.
async function signIn(page, { email, password }) {
  await page.goto(`${url}/login`);
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
}

// Registrations in flight, by page: finishing the kit then confirms the address.
const registering = new Map();

async function register(page, url, { name, email, password }, screenshotName) {
  registering.set(page, { email, password });
  await page.goto(`${url}/register`);
  await page.fill('#reg-name', name);
  await page.fill('#reg-email', email);
  await page.fill('#reg-password', password);
  await page.fill('#reg-confirm', password);
  if (screenshotName) await shot(page, screenshotName);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=kit-grid]', { timeout: T });
  const words = await page.$$eval('[data-testid=kit-grid] .w', (els) => els.map((e) => e.textContent.trim()));
  assert.equal(words.length, 24, 'the kit shows 24 words');
  // Cannot go on before confirming the kit is saved.
  assert.equal(await page.isDisabled('text=Continue to Handoff'), true, 'continue is disabled until the kit is confirmed');
  return words;
}

async function finishKit(page, maildir = server.mail) {
  await page.check('#kit-saved');
  await page.click('text=Continue to Handoff');
  const who = registering.get(page);
  registering.delete(page);
  if (who) {
    // Without an invite the account exists once the emailed link is opened
    // and the registration's password typed there: "check your email", then
    // the link, then the password (it confirms and unlocks the keys at once).
    await page.waitForSelector('.check-email:has-text("Check your email")', { timeout: T });
    await page.goto(await mailedLink(maildir, who.email, 'confirm'));
    await page.waitForSelector('h1:has-text("Confirm your email address")', { timeout: T });
    await page.fill('#confirm-password', who.password);
    await page.click('button:has-text("Confirm and sign in")');
  }
  await page.waitForSelector('h1:has-text("Practices")', { timeout: T });
}

async function createPractice(page, { name, specialist }) {
  await page.fill('#p-name', name);
  if (specialist) {
    await page.check('input[name=kind] >> nth=1');
    await page.selectOption('#p-specialty', 'cardiology');
    await page.selectOption('#p-region', 'fraser');
  }
  await page.click('button:has-text("Create practice")');
  await page.waitForSelector(`h1:has-text("${name}")`, { timeout: T });
}

async function unlock(page, password) {
  await page.waitForSelector('#unlock-password', { timeout: T });
  await page.fill('#unlock-password', password);
  await page.click('button:has-text("Unlock")');
  await page.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
}

async function waitText(page, selector, text) {
  await page.waitForFunction(
    ([s, t]) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)),
    [selector, text],
    { timeout: T },
  );
}

mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// Every context any scenario opens watches for CSP violations.
const openContext = browser.newContext.bind(browser);
browser.newContext = async (options) => {
  const ctx = await openContext(options);
  await watchCsp(ctx);
  return ctx;
};
const server = await startServer();
const { url } = server;
const viewport = { width: 1366, height: 900 };
const moaUser = { name: 'Maria Lopez', email: 'maria@maple.example', password: 'maple practice pass 1' };
const specUser = { name: 'Dr. Sam Chen', email: 'sam@lakeside.example', password: 'lakeside cardio pass 1' };
const staffUser = { name: 'Pat Staff', email: 'pat@handoff.example', password: 'handoff staff pass 1' };
const patient = 'Eleanor Whitfield';
const attachment = Buffer.from('%PDF-1.4\n% a 12-lead ECG report for the referral test\n' + 'x'.repeat(200_000));
let moaKit = null;
let referralPath = null;

await test('referral round trip: MOA and specialist in two browsers, live', async () => {
  const moaCtx = await browser.newContext({ viewport });
  await moaCtx.grantPermissions(['notifications'], { origin: url });
  const specCtx = await browser.newContext({ viewport: { width: 1024, height: 1366 } }); // tablet width
  const staffCtx = await browser.newContext({ viewport });
  const moa = await moaCtx.newPage();
  const spec = await specCtx.newPage();
  const staff = await staffCtx.newPage();
  for (const p of [moa, spec, staff]) p.on('pageerror', (e) => console.log(`  page error: ${e.message}`));

  // 1. Both register and create practices; staff verify the specialist practice.
  await spec.goto(`${url}/login`);
  await shot(spec, '01-login');
  await register(spec, url, specUser);
  await finishKit(spec);
  await createPractice(spec, { name: 'Lakeside Cardiology', specialist: true });
  await waitText(spec, '[data-testid=verification]', 'Awaiting verification');

  moaKit = await register(moa, url, moaUser, '02-register');
  await shot(moa, '03-emergency-access-kit');
  await finishKit(moa);
  await createPractice(moa, { name: 'Maple Family Practice', specialist: false });
  await moa.click('a.navlink:has-text("Practices")');
  await moa.waitForSelector('h2:has-text("Create a practice")');
  await shot(moa, '04-practices');

  await register(staff, url, staffUser);
  await finishKit(staff);
  server.admin('grant-staff', staffUser.email);
  await staff.reload();
  await unlock(staff, staffUser.password);
  await staff.click('a.navlink:has-text("Staff admin")');
  const row = staff.locator('[data-testid=admin-practice]', { hasText: 'Lakeside Cardiology' });
  await row.locator('button:has-text("Verify")').click();
  await row.locator('.tag.ok:has-text("Verified")').waitFor({ timeout: T });
  // Staff extend the taxonomy.
  await staff.selectOption('#tx-specialty', 'cardiology');
  await staff.fill('#tx-name', 'Sports cardiology');
  await staff.click('form:has(#tx-name) button:has-text("Add")');
  await waitText(staff, '[role=status]', 'Added "Sports cardiology"');
  await shot(staff, '05-staff-admin');

  // The specialist sees the members screen (and would see "Verified" on refresh).
  await spec.reload();
  await unlock(spec, specUser.password);
  await spec.click('a.navlink:has-text("Practices")');
  await spec.click('a:has-text("Lakeside Cardiology")');
  await waitText(spec, '[data-testid=verification]', 'Verified');
  await shot(spec, '06-practice-members');
  await spec.click('a.navlink:has-text("Received")');
  await spec.waitForSelector('h1:has-text("Received referrals")');

  // 2. The MOA sends a "choose for me" referral with an attachment.
  await moa.click('a.navlink:has-text("New referral")');
  await moa.selectOption('#s-specialty', 'cardiology');
  await moa.selectOption('#s-category', 'arrhythmia');
  await moa.selectOption('#s-region', 'fraser');
  await shot(moa, '07-send-routing');
  await moa.click('button:has-text("Continue")');
  await moa.waitForSelector('text=Choose for me', { timeout: T });
  assert.equal(await moa.isChecked('input[name=target] >> nth=0'), true, 'choose for me is the default');
  await moa.click('button:has-text("Continue")');
  await moa.fill('#pt-name', patient);
  await moa.fill('#pt-dob', '1948-03-14');
  await moa.selectOption('#pt-sex', 'Female');
  await moa.fill('#pt-hn', '9876543210');
  await moa.fill('#pt-phone', '604-555-0143');
  await moa.fill('#pt-address', '12 Cedar Lane, Surrey BC');
  await moa.fill('#pt-reason', 'Intermittent palpitations with presyncope, query paroxysmal AF.');
  await moa.fill('#pt-details', 'Holter pending. On metoprolol 25 mg bid. ECG attached.');
  await shot(moa, '08-send-patient');
  await moa.click('button:has-text("Continue")');
  await moa.setInputFiles('#s-files', { name: 'ecg-report.pdf', mimeType: 'application/pdf', buffer: attachment });
  await moa.waitForSelector('.files li:has-text("ecg-report.pdf")', { timeout: T });
  await moa.click('button:has-text("Continue")');
  await moa.waitForSelector('[data-testid=review]');
  await shot(moa, '09-send-review');
  await moa.click('button:has-text("Send referral")');
  await moa.waitForURL(/\/referrals\/[0-9a-f-]+$/, { timeout: T });
  await waitText(moa, '[data-testid=patient-name]', patient);
  referralPath = new URL(moa.url()).pathname;
  const number = (await moa.textContent('[data-testid=referral-number]')).trim();
  assert.match(number, /^HR-[A-Z0-9]{4}-[A-Z0-9]{4}$/);

  // 3. The specialist sees it arrive live (no reload), opens it, changes urgency, accepts.
  const specRow = spec.locator('[data-testid=referral-row]', { hasText: patient });
  await specRow.waitFor({ timeout: T });
  assert.equal(await specRow.locator('.dot').count(), 1, 'a new referral is marked unread');
  await spec.waitForSelector('.toast:has-text("New referral")', { timeout: T });
  await shot(spec, '10-received-inbox');
  await specRow.locator('a').click();
  await waitText(spec, '[data-testid=patient-name]', patient);
  await waitText(spec, '[data-testid=attachments]', 'ecg-report.pdf');
  const [download] = await Promise.all([spec.waitForEvent('download', { timeout: T }), spec.click('[data-testid=attachments] button:has-text("Download")')]);
  const got = readFileSync(await download.path());
  assert.ok(got.equals(attachment), 'the downloaded attachment decrypts to the bytes the MOA attached');
  await spec.selectOption('#act-urgency', 'urgent');
  await spec.click('button:has-text("Change urgency")');
  await waitText(spec, '[data-testid=detail-urgency]', 'Urgent');
  // 4. The MOA sees each change live, with a notification for each.
  await waitText(moa, '[data-testid=detail-urgency]', 'Urgent');
  await waitText(moa, '.toast', 'urgency changed to Urgent');
  await spec.click('button:has-text("Accept")');
  await waitText(spec, '[data-testid=detail-status]', 'Accepted');
  await shot(spec, '11-referral-detail-specialist');

  await waitText(moa, '[data-testid=detail-status]', 'Accepted');
  await waitText(moa, '.toast', `${number}: Accepted`);
  await waitText(moa, '[data-testid=history]', 'Opened by the specialist');
  await waitText(moa, '[data-testid=history]', 'Urgency changed to Urgent');

  // 5. Thread messages both ways, live.
  await moa.fill('#msg-text', 'Patient can attend any weekday morning.');
  await moa.click('button:has-text("Send message")');
  await waitText(spec, '[data-testid=message-text]', 'Patient can attend any weekday morning.');
  await spec.fill('#msg-text', 'Booked for Tuesday 9:30. Please send the Holter when back.');
  await spec.click('button:has-text("Send message")');
  await waitText(moa, '[data-testid=message-text]', 'Booked for Tuesday 9:30.');
  await waitText(moa, '.toast', 'New message');
  // A file added after sending is sealed under its own item key, wrapped to
  // both practices' current keys: the other side lists and names it.
  await spec.setInputFiles('#att-add', { name: 'holter-summary.pdf', mimeType: 'application/pdf', buffer: attachment });
  await waitText(spec, '[data-testid=attachments]', 'holter-summary.pdf');
  await waitText(moa, '[data-testid=attachments]', 'holter-summary.pdf');
  await shot(moa, '12-referral-detail-moa');

  // The server crashes and comes back: both tabs show it, reconnect by
  // themselves, and resume without missing or repeating anything.
  await server.crash();
  await moa.waitForSelector('[data-testid=live-status]:has-text("Reconnecting")', { timeout: T });
  await spec.waitForSelector('[data-testid=live-status]:has-text("Reconnecting")', { timeout: T });
  await shot(moa, '13-reconnecting');
  await server.restart();
  await moa.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
  await spec.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
  await spec.fill('#msg-text', 'Holter received, thank you.');
  await spec.click('button:has-text("Send message")');
  await waitText(moa, '[data-testid=message-text]', 'Holter received, thank you.');
  assert.equal(await moa.locator('[data-testid=message-text]').count(), 3, 'each message shows once after the resume');

  // 6. The MOA reloads: the session survives, keys are unlocked again, everything is there.
  await moa.reload();
  await shot(moa, '14-unlock');
  await unlock(moa, moaUser.password);
  assert.equal(new URL(moa.url()).pathname, referralPath, 'the reload stays on the referral');
  await waitText(moa, '[data-testid=patient-name]', patient);
  await waitText(moa, '[data-testid=detail-status]', 'Accepted');
  await waitText(moa, '[data-testid=detail-urgency]', 'Urgent');
  await waitText(moa, '[data-testid=message-text]', 'Patient can attend any weekday morning.');
  await waitText(moa, '[data-testid=message-text]', 'Booked for Tuesday 9:30.');
  await waitText(moa, '[data-testid=attachments]', 'ecg-report.pdf');
  await waitText(moa, '[data-testid=attachments]', 'holter-summary.pdf');
  await moa.click('a.navlink:has-text("Sent")');
  const sentRow = moa.locator('[data-testid=referral-row]', { hasText: patient });
  await sentRow.waitFor({ timeout: T });
  assert.equal((await sentRow.locator('[data-testid=status]').textContent()).trim(), 'Accepted');
  await shot(moa, '15-sent');
  await moa.click('a.navlink:has-text("Notifications")');
  const emailBox = moa.locator('input[type=checkbox]').first();
  await emailBox.waitFor({ timeout: T });
  const before = await emailBox.isChecked();
  await emailBox.click();
  await waitText(moa, '[role=status]', 'Saved for Maple Family Practice');
  assert.equal(await emailBox.isChecked(), !before, 'the email setting flips and stays');
  await shot(moa, '16-notifications');

  // Filters and search run over the decrypted inbox.
  await spec.click('a.navlink:has-text("Received")');
  await spec.fill('#f-search', 'whitf');
  await specRow.waitFor({ timeout: T });
  await spec.fill('#f-search', 'nobody by this name');
  await spec.waitForSelector('text=No referral matches these filters.', { timeout: T });
  await spec.fill('#f-search', '');
  await spec.selectOption('#f-status', 'rejected');
  await spec.waitForSelector('text=No referral matches these filters.', { timeout: T });
  await spec.selectOption('#f-status', 'accepted');
  await specRow.waitFor({ timeout: T });

  await Promise.all([moaCtx.close(), specCtx.close(), staffCtx.close()]);
});

await test('password reset with the Emergency Access Kit keeps access to the referral', async () => {
  assert.ok(moaKit && referralPath, 'needs the first test');
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  // A wrong password is refused with a clear message.
  await page.goto(`${url}/login`);
  await page.fill('#login-email', moaUser.email);
  await page.fill('#login-password', 'not the password');
  await page.click('button[type=submit]');
  await waitText(page, '[role=alert]', 'Emergency Access Kit');
  // Words out of place are refused (checksum), before anything is sent.
  await page.goto(`${url}/recover`);
  await page.fill('#rec-email', moaUser.email);
  // Swap two different words (a kit can repeat a word: swapping a word with
  // its twin is the same kit, and that reset would succeed).
  const j = moaKit.findIndex((w) => w !== moaKit[0]);
  assert.ok(j > 0, 'a kit has at least two different words');
  const swapped = [...moaKit];
  [swapped[0], swapped[j]] = [swapped[j], swapped[0]];
  for (let i = 0; i < 24; i++) await page.fill(`#kit-word-${i + 1}`, swapped[i]);
  await page.fill('#rec-password', 'a brand new password 2');
  await page.fill('#rec-confirm', 'a brand new password 2');
  await page.click('button[type=submit]');
  // Swapping two words breaks the 8-bit checksum 255 times in 256, and the
  // client refuses before sending; the 1 in 256 swaps that keep a valid
  // checksum are a different kit, which the server refuses. Either way the
  // reset must fail with a clear message.
  await page.waitForFunction(
    (s) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes('grid positions') || e.textContent.includes('do not match this account')),
    '[role=alert]',
    { timeout: T },
  );
  // The refused attempt has finished before the right words go in.
  await page.waitForSelector('button[type=submit]:not([disabled])', { timeout: T });
  for (let i = 0; i < 24; i++) await page.fill(`#kit-word-${i + 1}`, moaKit[i]);
  await shot(page, '17-reset-with-kit');
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
  await page.goto(`${url}${referralPath}`);
  await unlock(page, 'a brand new password 2');
  await waitText(page, '[data-testid=patient-name]', patient);
  await waitText(page, '[data-testid=message-text]', 'Booked for Tuesday 9:30.');
  // The old password no longer works.
  const other = await ctx.browser().newContext({ viewport });
  const p2 = await other.newPage();
  await p2.goto(`${url}/login`);
  await p2.fill('#login-email', moaUser.email);
  await p2.fill('#login-password', moaUser.password);
  await p2.click('button[type=submit]');
  await waitText(p2, '[role=alert]', 'do not match');
  await Promise.all([ctx.close(), other.close()]);
});

await test("invite a colleague by email; a member's browser shares the key with her; removal", async () => {
  assert.ok(referralPath, 'needs the first test');
  const specCtx = await browser.newContext({ viewport });
  const spec = await specCtx.newPage();
  await signIn(spec, specUser);
  await spec.click('a.navlink:has-text("Practices")');
  await spec.click('a:has-text("Lakeside Cardiology")');
  await spec.waitForURL(/\/practices\/[0-9a-f-]+$/);
  const practiceId = new URL(spec.url()).pathname.split('/').pop();
  // The practice's key group, as the server's MLS log shows it (metadata only).
  const mlsLog = (page) => page.evaluate(async (id) => {
    const r = await fetch(`/api/v1/practices/${id}/mls`);
    return { status: r.status, body: r.ok ? await r.json() : null };
  }, practiceId);
  const start = await mlsLog(spec);
  assert.equal(start.status, 200);
  assert.ok(start.body.epoch >= 1, `the browser moved the practice onto MLS (epoch ${start.body.epoch})`);
  await spec.fill('#inv-email', 'nina@lakeside.example');
  await spec.click('button:has-text("Send invite")');
  await waitText(spec, '[role=status]', 'Invite emailed to nina@lakeside.example');
  await waitText(spec, 'ul.plain', 'nina@lakeside.example');

  // The invite arrives as an email (through the SMTP server): one link, no patient data.
  let link = null;
  const deadline = Date.now() + T;
  while (!link && Date.now() < deadline) {
    for (const raw of folderMail(server.mail)) {
      if (!raw.includes('nina@lakeside.example')) continue;
      assert.ok(!raw.includes(patient), 'no patient data in the invite');
      const m = raw.match(/https?:\/\/[^\s"<>]+\/invite\/[A-Za-z0-9_-]+/);
      if (m) link = m[0];
    }
    if (!link) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(link, 'the invite email holds a link');

  const ninaCtx = await browser.newContext({ viewport: { width: 820, height: 1180 } }); // small tablet
  const nina = await ninaCtx.newPage();
  await nina.goto(link);
  await nina.waitForSelector('#reg-email', { timeout: T });
  assert.equal(await nina.inputValue('#reg-email'), 'nina@lakeside.example', 'the invite fills in the email');
  await nina.fill('#reg-name', 'Nina Patel');
  await nina.fill('#reg-password', 'nina lakeside pass 1');
  await nina.fill('#reg-confirm', 'nina lakeside pass 1');
  await nina.click('button[type=submit]');
  await nina.waitForSelector('[data-testid=kit-grid]', { timeout: T });
  await finishKit(nina);
  await nina.waitForSelector('a:has-text("Lakeside Cardiology")', { timeout: T });

  // A member's browser shares the practice key with her (the admin opens the members page).
  await spec.reload();
  await unlock(spec, specUser.password);
  const ninaRow = spec.locator('tr', { hasText: 'nina@lakeside.example' });
  await ninaRow.locator('text=Has key').waitFor({ timeout: T });
  await nina.reload();
  await unlock(nina, 'nina lakeside pass 1');
  await nina.click('a.navlink:has-text("Received")');
  // She reads a referral sent before she joined (key history), and a browser made the commit that added her.
  await nina.locator('[data-testid=referral-row]', { hasText: patient }).waitFor({ timeout: T });
  const ninaId = await nina.evaluate(async () => (await (await fetch('/api/v1/me')).json()).id);
  const added = await mlsLog(spec);
  assert.ok(added.body.epoch > start.body.epoch, 'adding her advanced the epoch');
  assert.ok(added.body.entries.some((e) => e.added.includes(ninaId)), 'an MLS commit added her');
  await shot(nina, '18-colleague-inbox-tablet');

  // Her device reports the current epoch as unprocessable (as client core does when it cannot
  // process a commit): both see the warning, only the admin the button, which re-initialises.
  const reported = added.body.epoch;
  const report = await nina.evaluate(async ([id, epoch]) => {
    const r = await fetch(`/api/v1/practices/${id}/mls/reports`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ epoch }),
    });
    return r.status;
  }, [practiceId, reported]);
  assert.equal(report, 204, 'a member reports an epoch');
  await nina.click('a.navlink:has-text("Practices")');
  await nina.click('a:has-text("Lakeside Cardiology")');
  await waitText(nina, '[data-testid=key-group-reported]', `(epoch ${reported})`);
  await waitText(nina, '[data-testid=key-group-reported]', 'Ask a practice admin');
  assert.equal(await nina.locator('button:has-text("Re-initialise key group")').count(), 0, 'a member has no re-initialise button');
  await spec.reload();
  await unlock(spec, specUser.password);
  await waitText(spec, '[data-testid=key-group-reported]', `(epoch ${reported})`);
  await shot(spec, '19-key-group-reported');
  await spec.click('button:has-text("Re-initialise key group")');
  await waitText(spec, '[role=status]', 'The key group was re-initialised');
  await spec.locator('[data-testid=key-group-reported]').waitFor({ state: 'detached', timeout: T });
  const reinit = (await mlsLog(spec)).body.entries;
  const generation = reinit.find((e) => e.epoch === reported).generation;
  const fresh = reinit.find((e) => e.generation > generation);
  assert.ok(fresh && fresh.commit === null && fresh.links_to === reported - 1, 'a new key group links back to the last good epoch');
  assert.ok(reinit.find((e) => e.epoch === reported).revoked, 'the reported epoch is revoked');
  await spec.waitForFunction(async ([id, who, g]) => {
    const r = await fetch(`/api/v1/practices/${id}/mls`);
    return r.ok && (await r.json()).entries.some((e) => e.generation > g && e.added.includes(who));
  }, [practiceId, ninaId, generation], { timeout: T });

  // The admin removes her; her practice list is empty afterwards.
  await ninaRow.locator('button:has-text("Remove")').click();
  await spec.locator('tr', { hasText: 'nina@lakeside.example' }).waitFor({ state: 'detached', timeout: T });
  // The admin's browser committed her removal: a new epoch she is not in, and no more log for her.
  await spec.waitForFunction(async ([id, who]) => {
    const r = await fetch(`/api/v1/practices/${id}/mls`);
    return r.ok && (await r.json()).entries.some((e) => e.removed.includes(who));
  }, [practiceId, ninaId], { timeout: T });
  assert.equal((await mlsLog(nina)).status, 404, 'a removed member cannot read the key log');
  await nina.reload();
  await unlock(nina, 'nina lakeside pass 1');
  await nina.click('a.navlink:has-text("Practices")');
  await nina.waitForSelector('text=You do not belong to a practice yet', { timeout: T });
  await Promise.all([specCtx.close(), ninaCtx.close()]);
});

await test('free referral without an account: an MOA sends one, keeps the PDF, the specialist declines it, one email', async () => {
  assert.ok(referralPath, 'needs the first test (a verified cardiology practice in Fraser)');
  const freePatient = 'Hugo Marchetti';
  const senderEmail = 'jo@oakclinic.example';
  const specCtx = await browser.newContext({ viewport });
  const spec = await specCtx.newPage();
  await signIn(spec, specUser);
  // A specialist practice receives free referrals unless an admin switches it off.
  await spec.click('a.navlink:has-text("Practices")');
  await spec.click('a:has-text("Lakeside Cardiology")');
  await spec.waitForSelector('#free-intake', { timeout: T });
  assert.equal(await spec.isChecked('#free-intake'), true, 'free referrals are received by default');
  await spec.click('a.navlink:has-text("Received")');
  await spec.waitForSelector('h1:has-text("Received referrals")');

  // No account: from the sign-in screen's link.
  const senderCtx = await browser.newContext({ viewport, acceptDownloads: true });
  const sender = await senderCtx.newPage();
  sender.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  await sender.goto(`${url}/login`);
  await sender.click('#free-link');
  await sender.waitForSelector('#free-step-you', { timeout: T });
  await sender.selectOption('#free-role', 'moa');
  await sender.fill('#free-name', 'Jo Baker');
  await sender.fill('#free-email', senderEmail);
  await shot(sender, '20-free-you');
  await sender.click('#free-you-continue');
  await sender.waitForSelector('#free-code', { timeout: T });
  const code = await mailedCode(server.mail, senderEmail);
  // A wrong code costs a try and says so.
  const wrong = code.split('').map((d) => String((Number(d) + 1) % 10)).join('');
  await sender.fill('#free-code', wrong);
  await sender.click('#free-verify');
  await waitText(sender, '[data-testid=free-tries-left]', 'Tries left on this code: 4');
  await sender.waitForSelector('[role=alert]', { timeout: T });
  await shot(sender, '21-free-email-check');
  await sender.fill('#free-code', code);
  await sender.click('#free-verify');
  await sender.waitForSelector('#free-step-clinic', { timeout: T });
  // The provider's MSP number is checked for length.
  await sender.fill('#free-provider-name', 'Dr. Amir Haddad');
  await sender.fill('#free-provider-msp', '1234');
  await sender.fill('#free-clinic-name', 'Oak Street Clinic');
  await sender.fill('#free-clinic-phone', '604-555-0199');
  await sender.fill('#free-clinic-address', '88 Oak Street, Langley BC');
  await sender.click('#free-clinic-continue');
  await waitText(sender, '[role=alert]', '5 digits');
  await sender.fill('#free-provider-msp', '12345');
  await shot(sender, '22-free-provider-clinic');
  await sender.click('#free-clinic-continue');

  // The same referral form account holders use.
  await sender.waitForSelector('#s-specialty', { timeout: T });
  await sender.selectOption('#s-specialty', 'cardiology');
  await sender.selectOption('#s-category', 'arrhythmia');
  await sender.selectOption('#s-region', 'fraser');
  await shot(sender, '23-free-referral-routing');
  await sender.click('form.wizard button:has-text("Continue")');
  await sender.waitForSelector('text=Choose for me', { timeout: T });
  assert.equal(await sender.isChecked('input[name=target] >> nth=0'), true, 'choose for me is the default');
  await shot(sender, '24-free-referral-specialist');
  await sender.click('form.wizard button:has-text("Continue")');
  await sender.fill('#pt-name', freePatient);
  await sender.fill('#pt-dob', '1961-07-02');
  await sender.selectOption('#pt-sex', 'Male');
  await sender.fill('#pt-hn', '9123456789');
  await sender.fill('#pt-reason', 'New left bundle branch block on routine ECG.');
  await sender.fill('#pt-details', 'Asymptomatic. No prior cardiac history.');
  await shot(sender, '25-free-referral-patient');
  await sender.click('form.wizard button:has-text("Continue")');
  const freeAttachment = Buffer.from('%PDF-1.4\n% an ECG for the free referral test\n' + 'y'.repeat(100_000));
  await sender.setInputFiles('#s-files', { name: 'ecg-lbbb.pdf', mimeType: 'application/pdf', buffer: freeAttachment });
  await sender.waitForSelector('.files li:has-text("ecg-lbbb.pdf")', { timeout: T });
  await shot(sender, '26-free-referral-attachments');
  await sender.click('form.wizard button:has-text("Continue")');
  await sender.waitForSelector('[data-testid=review]', { timeout: T });
  await waitText(sender, '[data-testid=review-sender]', 'Jo Baker');
  await shot(sender, '27-free-review');
  await sender.click('button:has-text("Confirm & send")');
  await sender.waitForSelector('[data-testid=free-number]', { timeout: T });
  const number = (await sender.textContent('[data-testid=free-number]')).trim();
  assert.match(number, /^HR-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  await waitText(sender, '[data-testid=free-to]', 'Lakeside Cardiology');
  await shot(sender, '28-free-download');
  const [pdf] = await Promise.all([sender.waitForEvent('download', { timeout: T }), sender.click('#download-pdf')]);
  assert.equal(pdf.suggestedFilename(), `referral-${number}.pdf`);
  const pdfPath = join(mkdtempSync(join(tmpdir(), 'handoff-pdf-')), `referral-${number}.pdf`);
  await pdf.saveAs(pdfPath);
  const pdfText = execFileSync('pdftotext', ['-layout', pdfPath, '-']).toString();
  for (const want of [freePatient, number, 'Lakeside Cardiology', 'Dr. Amir Haddad', 'ecg-lbbb.pdf']) {
    assert.ok(pdfText.includes(want), `the PDF's text holds ${want}`);
  }
  execFileSync('pdftoppm', ['-png', '-r', '80', '-f', '1', '-l', '1', '-singlefile', pdfPath, join(SHOTS, '29-free-pdf-page-1')]);
  await waitText(sender, '[data-testid=free-downloaded]', 'Downloaded');

  // The specialist's tab shows it live, marked, decrypted, sender included; no thread, no added files.
  const row = spec.locator('[data-testid=referral-row]', { hasText: freePatient });
  await row.waitFor({ timeout: T });
  assert.equal(await row.locator('[data-testid=free-referral]').count(), 1, 'the inbox marks it Free referral');
  await shot(spec, '30-free-received-inbox');
  await row.locator('a').click();
  await waitText(spec, '[data-testid=patient-name]', freePatient);
  await waitText(spec, '[data-testid=free-referral]', 'Free referral');
  await waitText(spec, '[data-testid=free-sender-name]', 'Jo Baker');
  await waitText(spec, '[data-testid=free-sender-provider]', 'Dr. Amir Haddad');
  await waitText(spec, '[data-testid=free-sender-clinic]', 'Oak Street Clinic');
  await waitText(spec, '[data-testid=attachments]', 'ecg-lbbb.pdf');
  assert.equal(await spec.locator('#msg-text').count(), 0, 'no thread for a free referral');
  assert.equal(await spec.locator('#att-add').count(), 0, 'no later attachment for a free referral');
  await shot(spec, '31-free-detail-specialist');
  const note = 'Please refer to electrophysiology directly.';
  await spec.click('button:has-text("Decline…")');
  await spec.selectOption('#rej-reason', 'wrong_category');
  await spec.fill('#rej-note', note);
  await spec.click('button:has-text("Decline referral")');
  await waitText(spec, '[data-testid=detail-status]', 'Declined');

  // Exactly one status email, with the number and the reason, and nothing about the patient.
  const statusMails = () => folderMail(server.mail).filter((raw) => raw.includes(`To: ${senderEmail}`) && raw.includes(number));
  const deadline = Date.now() + T;
  while (statusMails().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  await new Promise((r) => setTimeout(r, 1000));
  const mails = statusMails();
  assert.equal(mails.length, 1, 'one status email');
  assert.match(mails[0], /wrong category|do not see this category/i, 'the email gives the reason');
  for (const secret of [freePatient, '9123456789', '1961-07-02', 'left bundle', note]) {
    assert.ok(!mails[0].includes(secret), `the email carries no ${secret}`);
  }
  await Promise.all([specCtx.close(), senderCtx.close()]);
});

// TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s) computed here from the secret
// the page shows, as an authenticator app would.
function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, '').toUpperCase()) {
    const i = alphabet.indexOf(c);
    assert.ok(i >= 0, `not base32: ${c}`);
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, seconds = Date.now() / 1000) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const h = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const o = h[h.length - 1] & 15;
  const n = (((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]) % 1_000_000;
  return String(n).padStart(6, '0');
}

// Enrolls the signed-in page in two-factor sign-in from settings: the QR code
// is drawn in the page and the secret shown as text; one computed code
// confirms it; the ten recovery codes are shown once.
async function enrollTwoFactor(page, screenshots) {
  await page.click('a.navlink:has-text("Notifications")');
  await page.click('button:has-text("Turn on two-factor sign-in")');
  await page.waitForSelector('[data-testid=totp-qr] svg', { timeout: T });
  const secret = (await page.textContent('#totp-secret')).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/, 'a 160-bit base32 secret');
  if (screenshots) await shot(page, '32-two-factor-enroll');
  await page.fill('#totp-code', totp(secret));
  await page.click('button:has-text("Turn on")');
  await page.waitForSelector('[data-testid=recovery-codes]', { timeout: T });
  const codes = await page.$$eval('[data-testid=recovery-codes] li', (els) => els.map((e) => e.textContent.trim()));
  assert.equal(codes.length, 10, 'ten recovery codes, shown once');
  if (screenshots) await shot(page, '33-two-factor-recovery-codes');
  await page.click('button:has-text("I saved my recovery codes")');
  await page.waitForSelector('[data-testid=totp-on]', { timeout: T });
  return { secret, codes };
}

await test('two-factor sign-in: enroll with the QR code, sign in with a computed code, a reused code is refused, a kit reset asks for a code', async () => {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  const user = { name: 'Tara Singh', email: 'tara@birch.example', password: 'birch clinic pass 1' };
  const kit = await register(page, url, user);
  await finishKit(page);

  const { secret, codes } = await enrollTwoFactor(page, true);

  // Sign out, then sign in: the code is asked after the password.
  const signIn = async (code) => {
    await page.goto(`${url}/login`);
    await page.fill('#login-email', user.email);
    await page.fill('#login-password', user.password);
    await page.click('button[type=submit]');
    await page.waitForSelector('#login-code', { timeout: T });
    await page.fill('#login-code', code);
    await page.click('button[type=submit]');
  };
  await page.click('button:has-text("Sign out")');
  await page.waitForSelector('#login-email', { timeout: T });
  const next = totp(secret, Date.now() / 1000 + 30); // the next step: later than the one that confirmed
  await signIn(next);
  await page.waitForSelector('button:has-text("Sign out")', { timeout: T });
  await shot(page, '34-two-factor-signed-in');

  // The same code again is refused.
  await page.click('button:has-text("Sign out")');
  await page.waitForSelector('#login-email', { timeout: T });
  await signIn(next);
  await waitText(page, '[role=alert]', 'wrong, was used already, or has expired');
  await shot(page, '35-two-factor-reused-code');

  // A kit reset asks for a code too: the kit alone does not reset the account.
  await page.goto(`${url}/recover`);
  await page.fill('#rec-email', user.email);
  for (let i = 0; i < 24; i++) await page.fill(`#kit-word-${i + 1}`, kit[i]);
  await page.fill('#rec-password', 'birch clinic pass 2');
  await page.fill('#rec-confirm', 'birch clinic pass 2');
  await page.click('button[type=submit]');
  await page.waitForSelector('#rec-code', { timeout: T });
  await page.fill('#rec-code', codes[0]);
  await page.click('button[type=submit]');
  await page.waitForSelector('button:has-text("Sign out")', { timeout: T });
  await ctx.close();
});

await test('a practice that requires two-factor sign-in sends a member without it to enrollment', async () => {
  const adminCtx = await browser.newContext({ viewport });
  const admin = await adminCtx.newPage();
  const memberCtx = await browser.newContext({ viewport });
  const member = await memberCtx.newPage();
  for (const p of [admin, member]) p.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  await register(admin, url, { name: 'Omar Haddad', email: 'omar@cedar.example', password: 'cedar clinic pass 1' });
  await finishKit(admin);
  await createPractice(admin, { name: 'Cedar Clinic', specialist: false });
  await admin.waitForURL(/\/practices\/[0-9a-f-]+$/);
  const practiceId = new URL(admin.url()).pathname.split('/').pop();
  await admin.fill('#inv-email', 'lee@cedar.example');
  await admin.click('button:has-text("Send invite")');
  await waitText(admin, '[role=status]', 'Invite emailed to lee@cedar.example');
  let link = null;
  const deadline = Date.now() + T;
  while (!link && Date.now() < deadline) {
    for (const raw of folderMail(server.mail)) {
      const m = raw.includes('lee@cedar.example') && raw.match(/https?:\/\/[^\s"<>]+\/invite\/[A-Za-z0-9_-]+/);
      if (m) link = m[0];
    }
    if (!link) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(link, 'the invite email holds a link');
  await member.goto(link);
  await member.waitForSelector('#reg-email', { timeout: T });
  await member.fill('#reg-name', 'Lee Wong');
  await member.fill('#reg-password', 'cedar member pass 1');
  await member.fill('#reg-confirm', 'cedar member pass 1');
  await member.click('button[type=submit]');
  await member.waitForSelector('[data-testid=kit-grid]', { timeout: T });
  await finishKit(member);
  await member.waitForSelector('a:has-text("Cedar Clinic")', { timeout: T });

  // The admin turns on two-factor sign-in, then requires it of the practice.
  await enrollTwoFactor(admin, false);
  await admin.click(`#require-2fa-${practiceId}`);
  await waitText(admin, '[role=status]', 'Cedar Clinic now requires two-factor sign-in');

  // The member without it still uses Handoff, but opening the practice sends them to enrollment.
  await member.click('a.navlink:has-text("Practices")');
  await member.click('a:has-text("Cedar Clinic")');
  await member.waitForSelector('button:has-text("Turn on two-factor sign-in")', { timeout: T });
  await member.waitForURL(/\/settings$/);
  await shot(member, '36-two-factor-required-by-practice');
  // After enrolling, the practice opens.
  await enrollTwoFactor(member, false);
  await member.click('a.navlink:has-text("Practices")');
  await member.click('a:has-text("Cedar Clinic")');
  await member.waitForSelector('h1:has-text("Cedar Clinic")', { timeout: T });
  await Promise.all([adminCtx.close(), memberCtx.close()]);
});

// Sessions (issue 14, wt-sessions): the idle timeout on a server of its own
// with a 12-second `session_idle_secs` (the rest of the suite keeps the
// 30-minute default), then the session list on the main server.
await test('sessions: an idle tab warns, then drops its keys and asks for the password again', async () => {
  const idle = await startServer('session_idle_secs = 12\n');
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  try {
    const user = { name: 'Ines Idle', email: 'ines@willow.example', password: 'willow clinic pass 1' };
    await register(page, idle.url, user);
    await finishKit(page, idle.mail);
    const cookie = (await ctx.cookies()).find((c) => c.name === 'handoff_session');
    assert.ok(cookie, 'signed in with a session cookie');
    // No input: the warning comes at 5/6 of the timeout (10 s of 12).
    await page.waitForSelector('.idle-warning:has-text("You will be signed out in")', { timeout: T });
    await shot(page, 'sessions-01-warning');
    // "Stay signed in" is activity: the warning goes, and comes back only after another quiet spell.
    await page.click('button:has-text("Stay signed in")');
    await page.waitForSelector('.idle-warning', { state: 'detached', timeout: T });
    await page.waitForSelector('.idle-warning', { timeout: T });
    // Then the timeout: the password screen.
    await page.waitForSelector('#idle-signed-out', { timeout: T });
    await page.waitForSelector('#unlock-password');
    await shot(page, 'sessions-02-unlock');
    // Nothing signed in is left on the page: no signed-in screen, no browser storage with keys.
    assert.equal(await page.locator('[data-testid=live-status]').count(), 0, 'the signed-in app is gone');
    const stored = await page.evaluate(async () => ({
      databases: indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [],
      session: Object.keys(sessionStorage),
      local: Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)]),
      cookie: document.cookie,
    }));
    assert.deepEqual(stored.databases, [], 'no IndexedDB database');
    assert.deepEqual(stored.session, [], 'nothing in sessionStorage');
    for (const [k, v] of stored.local) {
      assert.match(k, /^handoff\.seen\./, `localStorage holds read marks only, not ${k}`);
      assert.doesNotMatch(v, /secret|priv|sign_key|hpke/i, 'no key material in the read marks');
    }
    assert.doesNotMatch(stored.cookie, /handoff_session/, 'the session cookie is never visible to script');
    // The old session is ended on the server: its cookie is refused.
    const r = await fetch(`${idle.url}/api/v1/me`, { headers: { cookie: `handoff_session=${cookie.value}` } });
    assert.equal(r.status, 401, 'the ended session is refused');
    // Unlocking is signing in again.
    await page.fill('#unlock-password', user.password);
    await page.click('button:has-text("Unlock")');
    await page.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
  } finally {
    await ctx.close();
    idle.stop();
  }
});

await test('sessions: one browser ends another session of the same user, which is signed out at once', async () => {
  const aCtx = await browser.newContext({ viewport });
  const bCtx = await browser.newContext({ viewport });
  const a = await aCtx.newPage();
  const b = await bCtx.newPage();
  for (const p of [a, b]) p.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  const user = { name: 'Noor Sessions', email: 'noor@aspen.example', password: 'aspen clinic pass 1' };
  await register(a, url, user);
  await finishKit(a);
  await signIn(b, user);
  await a.click('a.navlink:has-text("Notifications")');
  await a.waitForSelector('table.sessions tr.session-row >> nth=1', { timeout: T });
  assert.equal(await a.locator('table.sessions tr.session-row').count(), 2, 'both sessions are listed');
  assert.equal(await a.locator('tr.session-row.current').count(), 1, 'one is this session');
  await waitText(a, 'table.sessions', 'Chrome on Linux');
  await shot(a, 'sessions-03-list');
  await a.click('tr.session-row:not(.current) button.end-session');
  // The other browser is signed out within a couple of seconds: its socket is closed at once.
  await b.waitForSelector('#login-email', { timeout: 5_000 });
  await waitText(a, '[role=status]', 'That session is signed out.');
  assert.equal(await a.locator('table.sessions tr.session-row').count(), 1, 'only this session is left');
  // "End all other sessions" does the same for every other one.
  await signIn(b, user);
  await a.reload();
  await unlock(a, user.password);
  await a.click('a.navlink:has-text("Notifications")');
  await a.waitForSelector('#end-other-sessions', { timeout: T });
  await a.click('#end-other-sessions');
  await b.waitForSelector('#login-email', { timeout: 5_000 });
  await waitText(a, '[role=status]', '1 other session(s) signed out.');
  await Promise.all([aCtx.close(), bCtx.close()]);
});

// The audit log (issue 14, wt-audit): a practice admin sees their own
// sign-in and a referral's first open, filters by action, and the CSV export
// holds exactly the rows on screen.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

await test('audit log: an admin sees their sign-in and a referral open, filters by action, and the CSV export matches the screen', async () => {
  assert.ok(referralPath, 'needs the first test');
  const ctx = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  await signIn(page, specUser);
  await page.click('a.navlink:has-text("Practices")');
  await page.click('a:has-text("Lakeside Cardiology")');
  await page.click('[data-testid=open-audit]');
  await page.waitForSelector('[data-testid=audit-table]', { timeout: T });
  const rows = () =>
    page.$$eval('[data-testid=audit-row]', (trs) =>
      trs.map((tr) => Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map((td) => [td.dataset.col, td.textContent]))),
    );
  const all = await rows();
  assert.ok(all.some((r) => r.action === 'sign_in' && r.actor_name === specUser.name), 'their own sign-in is in the log');
  assert.ok(all.some((r) => r.action === 'referral_opened' && r.actor_name === specUser.name), "the referral's first open is in the log");
  assert.ok(!all.some((r) => Object.values(r).some((v) => v.includes(patient))), 'no row names the patient');

  await page.selectOption('[data-testid=audit-action]', 'referral_opened');
  await page.click('button:has-text("Apply filters")');
  await page.waitForFunction(
    () => {
      const cells = [...document.querySelectorAll('[data-testid=audit-row] td[data-col=action]')];
      return cells.length > 0 && cells.every((td) => td.textContent === 'referral_opened');
    },
    null,
    { timeout: T },
  );
  const shown = await rows();
  await shot(page, 'audit-01-log');

  const [download] = await Promise.all([page.waitForEvent('download', { timeout: T }), page.click('[data-testid=audit-csv]')]);
  const [header, ...records] = parseCsv(readFileSync(await download.path(), 'utf8'));
  assert.equal(header[0], 'seq');
  assert.equal(records.length, shown.length, 'as many CSV rows as rows on screen');
  shown.forEach((row, i) => {
    for (const [col, text] of Object.entries(row)) {
      assert.equal(records[i][header.indexOf(col)], text, `row ${i + 1}, column ${col}`);
    }
  });
  await ctx.close();
});

// Membership with dates (issue 14, wt-members): an admin sets a member's end date; the members page lists it.
await test('an admin sets a member\'s end date and the members page lists it', async () => {
  const adminCtx = await browser.newContext({ viewport });
  const admin = await adminCtx.newPage();
  const memberCtx = await browser.newContext({ viewport });
  const member = await memberCtx.newPage();
  for (const p of [admin, member]) p.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  await register(admin, url, { name: 'Rosa Diaz', email: 'rosa@birch.example', password: 'birch clinic pass 1' });
  await finishKit(admin);
  await createPractice(admin, { name: 'Birch Clinic', specialist: false });
  await admin.waitForURL(/\/practices\/[0-9a-f-]+$/);
  await admin.fill('#inv-email', 'sam@birch.example');
  await admin.click('button:has-text("Send invite")');
  await waitText(admin, '[role=status]', 'Invite emailed to sam@birch.example');
  let link = null;
  const deadline = Date.now() + T;
  while (!link && Date.now() < deadline) {
    for (const raw of folderMail(server.mail)) {
      const m = raw.includes('sam@birch.example') && raw.match(/https?:\/\/[^\s"<>]+\/invite\/[A-Za-z0-9_-]+/);
      if (m) link = m[0];
    }
    if (!link) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(link, 'the invite email holds a link');
  await member.goto(link);
  await member.waitForSelector('#reg-email', { timeout: T });
  await member.fill('#reg-name', 'Sam Locum');
  await member.fill('#reg-password', 'birch locum pass 1');
  await member.fill('#reg-confirm', 'birch locum pass 1');
  await member.click('button[type=submit]');
  await member.waitForSelector('[data-testid=kit-grid]', { timeout: T });
  await finishKit(member);
  await member.waitForSelector('a:has-text("Birch Clinic")', { timeout: T });

  // The admin gives the locum an end date a month ahead, from the members page.
  await admin.reload();
  await unlock(admin, 'birch clinic pass 1');
  const row = admin.locator('tr', { hasText: 'sam@birch.example' });
  await row.waitFor({ timeout: T });
  const day = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
  await row.locator('input[type=date]').fill(day);
  await row.locator('button:has-text("Set end date")').click();
  await row.locator('text=ends').waitFor({ timeout: T });
  await row.locator('button:has-text("Change end date")').waitFor({ timeout: T });
  const listed = await admin.evaluate(async (id) => (await (await fetch(`/api/v1/practices/${id}/members`)).json()), new URL(admin.url()).pathname.split('/').pop());
  const sam = listed.members.find((m) => m.email === 'sam@birch.example');
  assert.equal(new Date(sam.ends_at).toISOString().slice(0, 10), new Date(Date.parse(day) + 86400000).toISOString().slice(0, 10), 'access ends at the end of the chosen day (UTC)');
  // The invite form offers the delegate role with its dates.
  await admin.selectOption('#inv-role', 'delegate');
  assert.equal(await admin.$eval('#inv-start', (e) => e.required), true, 'a delegate needs a start date');
  assert.equal(await admin.$eval('#inv-end', (e) => e.required), true, 'a delegate needs an end date');
  await shot(admin, 'members-01-dates');
  await Promise.all([adminCtx.close(), memberCtx.close()]);
});

// The inbox snapshot and the sealed search index (issue 16, wt-inbox).
await test('inbox: the list opens from the snapshot, and the search index in IndexedDB is sealed (no patient name in its bytes)', async () => {
  assert.ok(referralPath, 'needs the first test');
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  await signIn(page, specUser);
  await page.click('a.navlink:has-text("Received")');
  const row = page.locator('[data-testid=referral-row]', { hasText: patient });
  await row.waitFor({ timeout: T });
  // The index is written once the inbox is loaded: wait for its sealed box.
  const readIndex = () =>
    page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const open = indexedDB.open('handoff');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const db = open.result;
            if (!db.objectStoreNames.contains('search')) return resolve([]);
            const all = db.transaction('search').objectStore('search').getAll();
            all.onerror = () => reject(all.error);
            all.onsuccess = () => resolve(all.result.map((v) => Array.from(v)));
          };
        }),
    );
  let boxes = [];
  const deadline = Date.now() + T;
  while (boxes.length === 0 && Date.now() < deadline) {
    boxes = await readIndex();
    if (boxes.length === 0) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(boxes.length > 0 && boxes.every((b) => b.length > 40), 'the sealed index is stored');
  for (const b of boxes) {
    const bytes = Buffer.from(b);
    for (const needle of [patient, 'Whitfield', 'Eleanor']) {
      for (const form of [Buffer.from(needle), Buffer.from(Buffer.from(needle).toString('base64')), Buffer.from(needle.toLowerCase())]) {
        assert.ok(!bytes.includes(form), `the stored index holds no "${needle}"`);
      }
    }
  }
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
  assert.ok(!stored.includes('Whitfield'), 'nor does localStorage');
  // After a reload and the unlock the index opens again: search by name works, and the referral opens.
  await page.reload();
  await unlock(page, specUser.password);
  await page.click('a.navlink:has-text("Received")');
  await page.fill('#f-search', 'whitf');
  await row.waitFor({ timeout: T });
  await shot(page, 'inbox-01-search-after-reload');
  await row.locator('a').first().click();
  await waitText(page, '[data-testid=patient-name]', patient);
  await page.waitForSelector('[data-testid=history]', { timeout: T });
  await ctx.close();
});

await browser.close();
server.stop();
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
