'use strict';
// Express 5 with cookie-parser signed cookies and express-session, keys from
// a real OpenBao (and through `keyroll agent` + file://) rotating while
// clients stay logged in: under node:cluster with 4 workers, and in one
// process. The control without staging shows what staging prevents.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const signature = require('cookie-signature');
const express = require('express');
const session = require('express-session');
const keyroll = require('keyroll');
const { OpenBao, KeyFile, freePorts, request, listen, sleep, waitUntil, cli } = require('./helpers.js');
const site = require('./fixtures/site.js');

const ROTATIONS = 20;

/** Starts fixtures/app.js alone, or fixtures/cluster.js with 4 workers; resolves once it listens. */
async function startSite(t, { cluster, env }) {
  const port = await freePorts();
  const script = path.join(__dirname, 'fixtures', cluster ? 'cluster.js' : 'app.js');
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, ...env, PORT: String(port), WORKERS: '4', VAULT_TOKEN: OpenBao.TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  t.after(() => child.kill('SIGTERM'));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the site did not start: ${output}`)), 60000);
    child.stdout.on('data', (chunk) => {
      if (String(chunk).includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the site exited (${code}): ${output}`));
    });
  });
  return port;
}

/**
 * Clients log in, then request /whoami without pause while `rotate` publishes
 * ROTATIONS new keys `everyMs` apart, and for `settleMs` after. A login
 * answered with "anonymous" is a lost session (the client logs in again).
 */
async function drive(port, { rotate, everyMs, settleMs, clients = 8 }) {
  const stats = { requests: 0, lost: 0, errors: 0 };
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    const jar = new Map();
    const login = () => request(port, { method: 'POST', path: '/login', jar });
    assert.equal((await login()).status, 200);
    while (running) {
      const answer = await request(port, { path: '/whoami', jar });
      stats.requests++;
      if (answer.status !== 200) {
        stats.errors++;
      } else if (answer.body !== 'ada') {
        stats.lost++;
        await login();
      }
    }
  });
  for (let i = 0; i < ROTATIONS; i++) {
    await sleep(everyMs);
    await rotate();
  }
  await sleep(settleMs);
  running = false;
  await Promise.all(loops);
  return stats;
}

/** Every worker answering has seen at least `rotations` key-set changes. */
async function assertRotated(port, rotations) {
  for (let i = 0; i < 8; i++) {
    const generation = Number((await request(port, { path: '/generation' })).body);
    assert.ok(generation > rotations, `a worker at generation ${generation} after ${rotations} rotations`);
  }
}

// Staged: a new key only verifies for 1.5 s, more than any worker's poll
// lag (0.2 s), before it signs.
const STAGED = { interval: 0.2, activationDelay: 1.5, fallbackWindow: 600, maxFallbacks: 8 };

for (const mode of ['cookies', 'session']) {
  test(`${mode}: 4 cluster workers, keys rotating ${ROTATIONS} times in OpenBao: no session lost`, async (t) => {
    const bao = await OpenBao.start(t);
    if (!bao) return;
    await bao.put();
    const env = { KEYROLL_URI: bao.uri(), KEYROLL_OPTIONS: JSON.stringify(STAGED), APP_MODE: mode };
    if (mode === 'session') env.SESSION_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'keyroll-sessions-'));
    const port = await startSite(t, { cluster: true, env });
    const stats = await drive(port, { rotate: () => bao.put(), everyMs: 400, settleMs: 2500 });
    t.diagnostic(`staged: ${JSON.stringify(stats)}`);
    assert.equal(stats.errors, 0, JSON.stringify(stats));
    assert.equal(stats.lost, 0, JSON.stringify(stats));
    assert.ok(stats.requests > 200, JSON.stringify(stats));
    await assertRotated(port, ROTATIONS);
  });

  test(`${mode}: the control without staging loses sessions across the same cluster`, async (t) => {
    const bao = await OpenBao.start(t);
    if (!bao) return;
    await bao.put();
    // No activation delay: each worker signs with a new key as soon as it
    // polls, while the others (polling each second) still refuse it.
    const options = { interval: 1, activationDelay: 0, fallbackWindow: 600, maxFallbacks: 8 };
    const env = { KEYROLL_URI: bao.uri(), KEYROLL_OPTIONS: JSON.stringify(options), APP_MODE: mode };
    if (mode === 'session') env.SESSION_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'keyroll-sessions-'));
    const port = await startSite(t, { cluster: true, env });
    const stats = await drive(port, { rotate: () => bao.put(), everyMs: 400, settleMs: 1500 });
    t.diagnostic(`control: ${JSON.stringify(stats)}`);
    assert.ok(stats.lost > 0, `the control lost no session: ${JSON.stringify(stats)}`);
  });
}

test(`cookies through keyroll agent and file://: 4 workers, ${ROTATIONS} rotations, no session lost`, async (t) => {
  const bao = await OpenBao.start(t);
  if (!bao) return;
  const binary = cli(t);
  if (!binary) return;
  await bao.put();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'keyroll-agent-')), 'keys.json');
  const agent = spawn(binary, ['agent', '--keys', bao.uri(), '--out', out, '--interval', '200ms'], {
    env: { ...process.env, VAULT_TOKEN: OpenBao.TOKEN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => agent.kill('SIGTERM'));
  await waitUntil('the agent to write its file', () => fs.existsSync(out));
  // The file says it copies a shared store; the workers stage from the
  // store's times. They read the file when it changes (no poll lag).
  const options = { interval: 0.2, activationDelay: 1.5, fallbackWindow: 600, maxFallbacks: 8 };
  const env = { KEYROLL_URI: `file://${out}`, KEYROLL_OPTIONS: JSON.stringify(options), APP_MODE: 'cookies' };
  const port = await startSite(t, { cluster: true, env });
  const stats = await drive(port, { rotate: () => bao.put(), everyMs: 400, settleMs: 2500 });
  t.diagnostic(`agent: ${JSON.stringify(stats)}`);
  assert.equal(stats.errors, 0, JSON.stringify(stats));
  assert.equal(stats.lost, 0, JSON.stringify(stats));
  await assertRotated(port, ROTATIONS);
});

test('express-session in one process (its MemoryStore) keeps every session across rotations', async (t) => {
  const bao = await OpenBao.start(t);
  if (!bao) return;
  await bao.put();
  const env = { KEYROLL_URI: bao.uri(), KEYROLL_OPTIONS: JSON.stringify(STAGED), APP_MODE: 'session' };
  const port = await startSite(t, { cluster: false, env });
  const stats = await drive(port, { rotate: () => bao.put(), everyMs: 300, settleMs: 2500 });
  t.diagnostic(`one process: ${JSON.stringify(stats)}`);
  assert.equal(stats.errors, 0, JSON.stringify(stats));
  assert.equal(stats.lost, 0, JSON.stringify(stats));
  await assertRotated(port, ROTATIONS);
});

/** The value of a signed cookie (`s:value.signature`, URI-encoded) checked against `secret`. */
function signedBy(cookie, secret) {
  const text = decodeURIComponent(cookie);
  assert.ok(text.startsWith('s:'), text);
  return signature.unsign(text.slice(2), secret) !== false;
}

test('express-session and cookie-parser keep the array they are given: a rotation reaches them in place', async (t) => {
  const keys = new KeyFile();
  const v1 = keys.add({ id: 'v1' });
  const ring = await keyroll.open(keys.uri, { interval: 0.05 });
  t.after(() => ring.close());
  const secrets = ring.secrets;
  const port = await listen(t, site(ring.secrets));

  const jar = new Map();
  await request(port, { method: 'POST', path: '/login', jar });
  assert.ok(signedBy(jar.get('connect.sid'), v1) && signedBy(jar.get('user'), v1));

  const v2 = keys.add({ id: 'v2' });
  await waitUntil('v2 to sign', () => ring.secrets[0] === v2);
  assert.equal(ring.secrets, secrets, 'one array for the life of the ring');
  assert.deepEqual([...ring.secrets], [v2, v1]);
  // The cookies signed with v1 verify (v1 is a fallback in the same array)
  // and come back signed with v2: both middlewares read the array they were
  // given at each request. A version that copied it would still sign with v1.
  assert.equal((await request(port, { path: '/whoami', jar })).body, 'ada|ada');
  assert.ok(signedBy(jar.get('connect.sid'), v2), 'express-session signs with the new key');
  assert.ok(signedBy(jar.get('user'), v2), 'cookie-parser signs with the new key');
});

test('a failed-closed ring empties the array: no session verifies, none is signed', async (t) => {
  const keys = new KeyFile();
  keys.add({ id: 'v1' });
  const ring = await keyroll.open(keys.uri, { interval: 0.05 });
  t.after(() => ring.close());
  const app = express();
  app.use(session({ secret: ring.secrets, resave: false, saveUninitialized: false }));
  app.post('/login', (req, res) => {
    req.session.user = 'ada';
    res.send('ok');
  });
  app.get('/whoami', (req, res) => res.send(req.session.user || 'anonymous'));
  app.use((error, req, res, next) => {
    if (!res.headersSent) res.status(500).send('refused');
  });
  const port = await listen(t, app);
  const jar = new Map();
  await request(port, { method: 'POST', path: '/login', jar });
  assert.equal((await request(port, { path: '/whoami', jar })).body, 'ada');

  keys.entries[0].state = 'disabled';
  keys.write();
  await waitUntil('the ring to fail closed', () => ring.secrets.length === 0);
  assert.equal(ring.status().health, 'stale');
  assert.match(ring.refused, /failed closed/);
  assert.equal(
    (await request(port, { path: '/whoami', jar })).body,
    'anonymous',
    'the session signed with the revoked key is not honoured',
  );
  // express-session signs as the headers go out: with no key it throws
  // there, and the answer carries no session cookie.
  const fresh = new Map();
  await request(port, { method: 'POST', path: '/login', jar: fresh }).catch(() => {});
  assert.equal(fresh.has('connect.sid'), false, 'and nothing signs a new one');

  const v2 = keys.add({ id: 'v2' });
  await waitUntil('the ring to reopen on v2', () => ring.secrets[0] === v2);
  assert.deepEqual([...ring.secrets], [v2], 'the revoked key stays out');
  assert.equal((await request(port, { path: '/whoami', jar })).body, 'anonymous');
});
