// Browser tests for the Handoff web client: the real `handoff` server with a
// fresh embedded store, Debian's chromium driven by playwright-core, separate
// browser contexts for a referring MOA, a specialist and a staff member.
//
// Environment (set by `cargo xtask test`): HANDOFF_BIN, HANDOFF_WEB,
// CHROMIUM, SCREENSHOTS. Prints `e2e: N passed, N failed` last.

import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
// `opts.logFile` (optional): the server's stderr goes there, at `info`, so a
// scenario can scan its log (it is inherited, at `warn`, otherwise).
async function startServer(config, opts = {}) {
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
      env: { ...process.env, RUST_LOG: opts.logFile ? 'info' : 'warn', HANDOFF_SMTP_URL: smtp.url, ...configEnv },
      stdio: ['ignore', 'ignore', opts.logFile ? openSync(opts.logFile, 'a') : 'inherit'],
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
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // The built-in video call (wt-rooms-video): a fake camera and microphone,
    // no permission prompt, and plain host ICE candidates so loopback connects
    // without STUN (Chromium otherwise hides local addresses behind mDNS names).
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--autoplay-policy=no-user-gesture-required',
  ],
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
  const emailBox = moa.locator('section[aria-labelledby=n-email] input[type=checkbox]').first();
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

// Telehealth waiting room (issue 15, wt-rooms-web): a host and two patients in
// three browsers, on a server of its own whose log is kept for the scan.
// Every byte under a directory (a file removed while listing held nothing to find).
function allBytes(dir) {
  const out = [];
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      try {
        if (statSync(p).isDirectory()) stack.push(p);
        else out.push([p, readFileSync(p)]);
      } catch (e) {
        if (e.code !== 'ENOENT') throw e;
      }
    }
  }
  return out;
}

await test('rooms: two patients check in, the host messages, admits to an external link, returns, removes; a restart keeps the order; nothing readable is stored', async () => {
  const logFile = join(mkdtempSync(join(tmpdir(), 'handoff-e2e-rooms-log-')), 'server.log');
  const srv = await startServer(undefined, { logFile });
  const hostCtx = await browser.newContext({ viewport });
  await hostCtx.grantPermissions(['notifications'], { origin: srv.url });
  // A Notification spy, and a switch that makes the tab report itself hidden
  // (a headless tab cannot really be put in the background).
  await hostCtx.addInitScript(() => {
    window.__notes = [];
    window.__hidden = false;
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (window.__hidden ? 'hidden' : 'visible'), configurable: true });
    Object.defineProperty(Document.prototype, 'hidden', { get: () => window.__hidden, configurable: true });
    class Spy {
      constructor(title, opts) {
        window.__notes.push({ title, body: (opts && opts.body) || '' });
      }
      static get permission() {
        return 'granted';
      }
      static requestPermission() {
        return Promise.resolve('granted');
      }
    }
    window.Notification = Spy;
  });
  const host = await hostCtx.newPage();
  const p1Ctx = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone
  const p2Ctx = await browser.newContext({ viewport });
  const p1 = await p1Ctx.newPage();
  const p2 = await p2Ctx.newPage();
  for (const p of [host, p1, p2]) p.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  // Every frame each patient's sockets receive.
  const frames = new Map([[p1, []], [p2, []]]);
  for (const p of [p1, p2]) p.on('websocket', (ws) => ws.on('framereceived', (f) => frames.get(p).push(String(f.payload))));
  const parsed = (p) => frames.get(p).map((t) => { try { return JSON.parse(t); } catch { return null; } }).filter(Boolean);
  const admissions = (p) => parsed(p).filter((f) => f.type === 'room' && f.event && f.event.type === 'admitted');

  const hostUser = { name: 'Dr. Lee Park', email: 'lee@cedar.example', password: 'cedar clinic pass 1' };
  await register(host, srv.url, hostUser);
  await finishKit(host, srv.mail);
  await createPractice(host, { name: 'Cedar Clinic', specialist: false });
  const roomName = "Dr. Lee's virtual clinic";
  const meeting = 'https://meet.example.test/cedar-visit-8842';
  await host.fill('#room-name', roomName);
  await host.fill('#room-external', meeting);
  await host.click('button:has-text("Create room")');
  const linkBox = host.locator('[data-testid=room-row]', { hasText: roomName }).locator('[data-testid=patient-link]');
  await linkBox.waitFor({ timeout: T });
  const patientLink = await linkBox.inputValue();
  const u = new URL(patientLink);
  assert.match(u.pathname, /^\/r\/[A-Za-z0-9_-]+$/, 'the patient link is /r/<link>');
  assert.ok(u.hash.length > 40, 'the room secret rides in the fragment');
  const secretB64 = u.hash.slice(1);
  const secret = Buffer.from(secretB64.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  assert.equal(secret.length, 32, 'the fragment holds the 32-byte room secret');
  await shot(host, 'rooms-01-practice-rooms');

  // The host opens the waiting room, then looks away.
  await host.click('[data-testid=open-room]');
  await host.waitForSelector(`[data-testid=room-title]:has-text("${roomName}")`, { timeout: T });
  await host.waitForSelector('text=No one is waiting.', { timeout: T });
  await host.evaluate(() => { window.__hidden = true; });

  const names = ['Ada Quinlan', 'Bartholomew Vance'];
  const checkIn = async (p, name) => {
    await p.goto(patientLink);
    await p.waitForSelector(`[data-testid=room-name]:has-text("${roomName}")`, { timeout: T });
    await p.fill('#guest-name', name);
    await p.click('button:has-text("Check in")');
    await waitText(p, '[data-testid=waiting]', 'Please wait, the host will let you in soon.');
  };
  await checkIn(p1, names[0]);
  await host.waitForFunction(() => window.__notes.length === 1, null, { timeout: T });
  const notes = await host.evaluate(() => window.__notes);
  assert.equal(notes[0].body, `A patient is waiting in ${roomName}`, 'the background tab is told a patient waits');
  assert.ok(!JSON.stringify(notes).includes('Ada'), 'the notification carries no name');
  // Back in front: no notification for the next arrival.
  await host.evaluate(() => { window.__hidden = false; document.dispatchEvent(new Event('visibilitychange')); });
  await checkIn(p2, names[1]);
  await shot(p1, 'rooms-02-patient-waiting');

  const order = async () => (await host.$$eval('[data-testid=guest-name]', (els) => els.map((e) => e.textContent.trim())));
  await host.waitForFunction(() => document.querySelectorAll('[data-testid=guest-name]').length === 2, null, { timeout: T });
  assert.deepEqual(await order(), names, 'the host sees both names in arrival order');
  assert.equal((await host.evaluate(() => window.__notes)).length, 1, 'no notification while the tab is in front');
  await shot(host, 'rooms-03-host-waiting');

  // A message to the waiting room reaches both patients.
  const note = 'Dr. Lee is running about ten minutes late.';
  await host.fill('#room-message', note);
  await host.click('button:has-text("Send to everyone waiting")');
  await waitText(p1, '[data-testid=room-messages]', note);
  await waitText(p2, '[data-testid=room-messages]', note);
  await shot(p2, 'rooms-04-patient-message');

  // Admit patient 1: only patient 1's socket ever gets the admission.
  const row = (name) => host.locator('[data-testid=guest-row]', { hasText: name });
  await row(names[0]).locator('[data-testid=admit]').click();
  await p1.waitForSelector('[data-testid=meeting-link]', { timeout: T });
  assert.equal(await p1.getAttribute('[data-testid=meeting-link]', 'href'), meeting, 'the admitted patient gets the meeting link');
  await shot(p1, 'rooms-05-patient-admitted');
  await waitText(host, '[data-testid=guest-state]', 'With you');
  assert.equal(admissions(p1).length, 1, "the admission reached patient 1's socket");
  const sealedAdmission = admissions(p1)[0].event.sealed_admission;
  assert.equal(admissions(p2).length, 0, "patient 2's socket never receives the admission");
  assert.ok(!frames.get(p2).some((t) => t.includes(sealedAdmission) || t.includes(meeting)), "not even sealed: patient 2's frames hold no trace of it");
  assert.ok(!frames.get(p1).some((t) => t.includes(meeting)), 'the link travels sealed');

  // Return patient 1 to the waiting room.
  await row(names[0]).locator('[data-testid=return]').click();
  await waitText(p1, '[data-testid=waiting]', 'Please wait, the host will let you in soon.');

  // The server is SIGKILLed and restarted: everyone reconnects, the order holds.
  await srv.crash();
  await p1.waitForSelector('text=Reconnecting', { timeout: T });
  await srv.restart();
  await host.waitForSelector('[data-testid=live-status]:has-text("Live")', { timeout: T });
  await host.waitForFunction(() => document.querySelectorAll('[data-testid=guest-name]').length === 2, null, { timeout: T });
  assert.deepEqual(await order(), names, 'after the restart the waiting order is the original one');
  await waitText(p1, '[data-testid=waiting]', 'Please wait, the host will let you in soon.');
  await waitText(p2, '[data-testid=waiting]', 'Please wait, the host will let you in soon.');
  await p1.waitForSelector('text=Reconnecting', { state: 'detached', timeout: T });
  await shot(host, 'rooms-06-host-after-restart');

  // Remove patient 2: a polite end screen.
  await row(names[1]).locator('[data-testid=remove]').click();
  await p2.waitForSelector('[data-testid=ended]', { timeout: T });
  await shot(p2, 'rooms-07-patient-removed');
  await host.waitForFunction(() => document.querySelectorAll('[data-testid=guest-name]').length === 1, null, { timeout: T });

  // A rotated link stops working at once.
  await host.goBack();
  await host.locator('[data-testid=room-row]', { hasText: roomName }).locator('[data-testid=rotate-link]').click();
  await host.waitForFunction((old) => [...document.querySelectorAll('[data-testid=patient-link]')].every((e) => e.value !== old), patientLink, { timeout: T });
  const p3 = await p2Ctx.newPage();
  await p3.goto(patientLink);
  await p3.waitForSelector('[data-testid=bad-link]', { timeout: T });
  await shot(p3, 'rooms-08-rotated-link');

  // Neither name, the room secret nor the meeting link is in any stored byte or the log.
  const needles = [...names, meeting, secretB64].map((n) => [n, Buffer.from(n)]);
  needles.push(['the raw room secret', secret]);
  for (const [p, bytes] of [...allBytes(srv.data), [logFile, readFileSync(logFile)]]) {
    for (const [what, needle] of needles) assert.ok(!bytes.includes(needle), `${what} found in ${p}`);
  }
  assert.ok(readFileSync(logFile).length > 0, 'the log was captured');

  await Promise.all([hostCtx.close(), p1Ctx.close(), p2Ctx.close()]);
  srv.stop();
});

// The built-in video call (issue 15, wt-rooms-video). These run on the
// `/call-harness` page: both sides of a call in one page, the same CallView
// the room screens render, with an in-page relay standing in for the room
// socket (`window.__handoffCallRelay` sees and may rewrite every sealed signal).
async function openCallHarness() {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  await page.goto(`${url}/call-harness`);
  await page.waitForSelector('.harness-start', { timeout: T });
  return { ctx, page };
}

// Inbound RTP bytes of every call connection on the page.
function inboundBytes(page) {
  return page.evaluate(async () =>
    Promise.all(
      (window.__handoffCallPeers || []).map(async (pc) => {
        let n = 0;
        (await pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp') n += r.bytesReceived || 0;
        });
        return n;
      }),
    ),
  );
}

const refusal = 'The call was refused: its security check failed — the connection may have been tampered with.';

await test('video: a built-in call connects peer to peer, both remote videos play and inbound RTP bytes grow; mute, camera off and hang up reach the other side', async () => {
  const { ctx, page } = await openCallHarness();
  const seen = [];
  await page.evaluate(() => {
    window.__relayed = [];
    window.__handoffCallRelay = (direction, bytes) => {
      window.__relayed.push({ direction, text: new TextDecoder('utf-8', { fatal: false }).decode(bytes) });
      return bytes;
    };
  });
  await page.click('.harness-start');
  await page.waitForSelector('.harness-host .call[data-phase=verified]', { timeout: T });
  await page.waitForSelector('.harness-guest .call[data-phase=verified]', { timeout: T });
  await page.waitForFunction(
    () => {
      const v = [...document.querySelectorAll('video.call-remote')];
      return v.length === 2 && v.every((e) => e.videoWidth > 0);
    },
    null,
    { timeout: T },
  );
  const first = await inboundBytes(page);
  assert.equal(first.length, 2, 'two connections, host and guest');
  await new Promise((r) => setTimeout(r, 2000));
  const second = await inboundBytes(page);
  for (const i of [0, 1]) assert.ok(second[i] > first[i], `inbound RTP bytes grow on side ${i}: ${first[i]} -> ${second[i]}`);
  // The media path is a direct host-to-host pair (no relay candidate).
  const pairs = await page.evaluate(async () =>
    Promise.all(
      window.__handoffCallPeers.map(async (pc) => {
        const stats = [];
        (await pc.getStats()).forEach((r) => stats.push(r));
        const pair = stats.find((r) => r.type === 'candidate-pair' && r.state === 'succeeded' && r.nominated);
        const local = pair && stats.find((r) => r.id === pair.localCandidateId);
        return local ? local.candidateType : null;
      }),
    ),
  );
  for (const t of pairs) assert.ok(t && t !== 'relay', `the media goes peer to peer, not through a relay (local candidate type ${t})`);
  // The relay saw only sealed bytes: no SDP, no fingerprint, no candidate in the clear.
  seen.push(...(await page.evaluate(() => window.__relayed)));
  assert.ok(seen.some((m) => m.direction === 'host-to-guest') && seen.some((m) => m.direction === 'guest-to-host'), 'signals went both ways');
  for (const m of seen) assert.ok(!/fingerprint|candidate|v=0|offer|answer/.test(m.text), 'a relayed signal is sealed');
  await shot(page, 'video-01-call');

  // The guest mutes and turns the camera off: the host is told.
  await page.click('.harness-guest .call-mute');
  await page.click('.harness-guest .call-camera');
  await waitText(page, '.harness-host .call-peer-camera', 'turned their camera off');
  await waitText(page, '.harness-host .call-peer-muted', 'muted their microphone');
  assert.equal(await page.$eval('.harness-guest .call-camera', (b) => b.textContent), 'Camera on');
  // The guest hangs up: both calls end.
  await page.click('.harness-guest .call-hang-up');
  await waitText(page, '.harness-guest .call-ended', 'You left the call.');
  await waitText(page, '.harness-host .call-ended', 'The other side left the call.');
  await shot(page, 'video-02-hung-up');
  await ctx.close();
});

await test('video: a man in the middle who rewrites the offer\'s fingerprint (tampering the sealed bytes or injecting his own SDP) gets the call refused, and both sides are told why', async () => {
  for (const mode of ['tamper', 'inject']) {
    const { ctx, page } = await openCallHarness();
    // The relay's own offer, with the relay's own DTLS fingerprint: what a
    // server sitting in the middle would substitute.
    await page.evaluate(async (mode) => {
      const own = new RTCPeerConnection();
      own.addTransceiver('audio');
      own.addTransceiver('video');
      const offer = await own.createOffer();
      window.__mitm = { rewritten: 0, seen: 0 };
      const enc = new TextEncoder();
      window.__handoffCallRelay = (direction, bytes) => {
        if (direction !== 'host-to-guest') return bytes;
        window.__mitm.seen++;
        // The host's first signal is its offer: rewrite it.
        if (window.__mitm.seen !== 1) return bytes;
        window.__mitm.rewritten++;
        if (mode === 'tamper') {
          // The sealed SDP is ciphertext: the fingerprint can only be rewritten blind.
          const out = new Uint8Array(bytes);
          for (let i = 40; i < out.length - 16; i += 97) out[i] ^= 0x5a;
          return out;
        }
        // Inject a plaintext offer carrying the relay's fingerprint, with a
        // plausible counter in front.
        const json = enc.encode(JSON.stringify({ type: 'offer', sdp: offer.sdp }));
        const out = new Uint8Array(8 + json.length);
        out[7] = 1;
        out.set(json, 8);
        return out;
      };
      window.__mitmFingerprint = (offer.sdp.match(/a=fingerprint:\S+ (\S+)/) || [])[1];
    }, mode);
    assert.ok(await page.evaluate(() => window.__mitmFingerprint), 'the relay has a fingerprint of its own to inject');
    await page.click('.harness-start');
    await waitText(page, '.harness-guest .call-refused', refusal);
    await waitText(page, '.harness-host .call-refused', refusal);
    assert.equal(await page.evaluate(() => window.__mitm.rewritten), 1, 'the relay rewrote the offer');
    assert.equal(await page.$$eval('.call video', (v) => v.length), 0, 'no video is shown after a refusal');
    if (mode === 'inject') await shot(page, 'video-03-mitm-refused');
    await ctx.close();
  }
});

await test('video: a DTLS certificate other than the one the authenticated SDP declared is refused by the fingerprint check', async () => {
  const { ctx, page } = await openCallHarness();
  // The test hook stands in for a swapped certificate: the fingerprint each
  // side expects is no longer the one its peer's DTLS handshake presents. The
  // signalling itself is untouched and opens fine.
  await page.evaluate(() => {
    window.__handoffTestExpectFingerprint = Array.from({ length: 32 }, (_, i) => (i * 7 + 3).toString(16).padStart(2, '0').toUpperCase()).join(':');
    window.__states = [];
    window.__handoffCallRelay = (direction, bytes) => bytes;
  });
  await page.click('.harness-start');
  // The connection does come up (ICE and DTLS succeed) before the check runs.
  await page.waitForFunction(() => (window.__handoffCallPeers || []).length === 2, null, { timeout: T });
  await page.evaluate(() => window.__handoffCallPeers.forEach((pc) => pc.addEventListener('connectionstatechange', () => window.__states.push(pc.connectionState))));
  await waitText(page, '.harness-guest .call-refused', refusal);
  await waitText(page, '.harness-host .call-refused', refusal);
  const states = await page.evaluate(() => window.__states);
  assert.ok(!states.includes('failed'), `the refusal is the fingerprint check's, not a failed handshake (${states.join(', ')})`);
  await shot(page, 'video-04-fingerprint-refused');
  await ctx.close();
});

// The built-in call in a real room, through the server's RoomActor (issue 15,
// wt-rooms-video): a host admits a patient into a built-in call.
async function builtInVisit(tag, relay) {
  const hostCtx = await browser.newContext({ viewport });
  const host = await hostCtx.newPage();
  const pCtx = await browser.newContext({ viewport });
  const patientPage = await pCtx.newPage();
  for (const p of [host, patientPage]) p.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  if (relay) await patientPage.routeWebSocket(/\/ws/, relay);
  await register(host, url, { name: `Dr. Elm ${tag}`, email: `elm-${tag}@elm.example`, password: 'elm clinic pass 1' });
  await finishKit(host);
  await createPractice(host, { name: `Elm ${tag} Clinic`, specialist: false });
  const roomName = `Elm ${tag} video room`;
  await host.fill('#room-name', roomName);
  await host.check('#room-video-built-in');
  await host.click('button:has-text("Create room")');
  const linkBox = host.locator('[data-testid=room-row]', { hasText: roomName }).locator('[data-testid=patient-link]');
  await linkBox.waitFor({ timeout: T });
  const patientLink = await linkBox.inputValue();
  await host.locator('[data-testid=room-row]', { hasText: roomName }).locator('[data-testid=open-room]').click();
  await host.waitForSelector(`[data-testid=room-title]:has-text("${roomName}")`, { timeout: T });
  await patientPage.goto(patientLink);
  await patientPage.fill('#guest-name', 'Iris Calloway');
  await patientPage.click('button:has-text("Check in")');
  await waitText(patientPage, '[data-testid=waiting]', 'Please wait, the host will let you in soon.');
  const row = host.locator('[data-testid=guest-row]', { hasText: 'Iris Calloway' });
  await row.locator('[data-testid=admit]').click();
  return { host, patientPage, row, close: () => Promise.all([hostCtx.close(), pCtx.close()]) };
}

// The last call connection's inbound RTP bytes on a page.
function lastInbound(page) {
  return page.evaluate(async () => {
    const pc = window.__handoffCallPeers[window.__handoffCallPeers.length - 1];
    let n = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') n += r.bytesReceived || 0;
    });
    return n;
  });
}


await test('video: in a room, the host admits a patient into a built-in call over the server; both remote videos play, inbound RTP grows; returning the patient ends the call', async () => {
  const { host, patientPage, row, close } = await builtInVisit('call');
  for (const p of [host, patientPage]) {
    await p.waitForSelector('.call[data-phase=verified]', { timeout: T });
    await p.waitForFunction(() => { const v = document.querySelector('video.call-remote'); return v && v.videoWidth > 0; }, null, { timeout: T });
  }
  const before = [await lastInbound(host), await lastInbound(patientPage)];
  await new Promise((r) => setTimeout(r, 2000));
  const after = [await lastInbound(host), await lastInbound(patientPage)];
  assert.ok(after[0] > before[0], `the host receives media: ${before[0]} -> ${after[0]}`);
  assert.ok(after[1] > before[1], `the patient receives media: ${before[1]} -> ${after[1]}`);
  await shot(host, 'video-05-room-call-host');
  await shot(patientPage, 'video-06-room-call-patient');
  // Returned to the waiting room: the patient's call ends, camera and connection closed.
  await row.locator('[data-testid=return]').click();
  await waitText(patientPage, '[data-testid=waiting]', 'Please wait, the host will let you in soon.');
  assert.equal(await patientPage.$$eval('.call', (c) => c.length), 0, 'no call on the patient page once returned');
  await patientPage.waitForFunction(() => window.__handoffCallPeers[window.__handoffCallPeers.length - 1].connectionState === 'closed', null, { timeout: T });
  await close();
});


await test('video: a man-in-the-middle relay between the patient and the server that rewrites the offer (its own SDP and fingerprint) gets the call refused, and both sides are told why', async () => {
  let rewritten = 0;
  const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const fake = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 ' + Array.from({ length: 32 }, () => 'AB').join(':') + '\r\n';
  const relay = (ws) => {
    const upstream = ws.connectToServer();
    ws.onMessage((m) => upstream.send(m));
    upstream.onMessage((m) => {
      let f = null;
      try { f = JSON.parse(m); } catch { /* not JSON: pass it on */ }
      if (f && f.type === 'room' && f.event && f.event.type === 'signal' && rewritten === 0) {
        // The host's first signal to the patient is its offer: the relay puts
        // its own SDP (its own DTLS fingerprint) in its place.
        const json = Buffer.from(JSON.stringify({ type: 'offer', sdp: fake }));
        f.event.sealed = b64url(Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), json]));
        rewritten++;
        return ws.send(JSON.stringify(f));
      }
      ws.send(m);
    });
  };
  const { host, patientPage, close } = await builtInVisit('mitm', relay);
  await waitText(patientPage, '.call-refused', refusal);
  await waitText(host, '[role=status]', 'its security check failed');
  assert.equal(rewritten, 1, 'the relay rewrote the offer on its way to the patient');
  assert.equal(await patientPage.$$eval('video.call-remote', (v) => v.length), 0, 'no video after the refusal');
  await shot(patientPage, 'video-07-room-mitm-refused');
  await close();
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
