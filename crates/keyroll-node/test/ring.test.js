'use strict';
// The ring itself: the live array and its staging, status, change events,
// bad input (each a clear KeyrollError or a refusal in the status, never a
// crash, never key material in a message), formats, worker threads.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { Worker } = require('node:worker_threads');
const keyroll = require('keyroll');
const { OpenBao, KeyFile, freePorts, newKey, sleep, waitUntil, missing } = require('./helpers.js');

async function rejects(promise, kind, pattern) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof keyroll.KeyrollError, `${error.name}: ${error.message}`);
    assert.equal(error.kind, kind, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

test('open refuses bad input with a KeyrollError that says what is wrong', async () => {
  const keys = new KeyFile();
  keys.add();
  await rejects(keyroll.open('nope://x'), 'config', /unknown key source scheme `nope:\/\/`/);
  await rejects(keyroll.open(42), 'config', /URI must be a string, not a number/);
  await rejects(keyroll.open(keys.uri, 'fast'), 'config', /options must be an object, not a string/);
  await rejects(keyroll.open(keys.uri, { interval: '5s' }), 'config', /^interval must be a number of seconds, not a string$/);
  await rejects(keyroll.open(keys.uri, { maxFallbacks: 1.5 }), 'config', /^maxFallbacks must be a whole number, not 1.5$/);
  await rejects(keyroll.open(keys.uri, { maxFallbacks: '2' }), 'config', /^maxFallbacks must be a whole number, not a string$/);
  await rejects(keyroll.open(keys.uri, { jitter: -1 }), 'config', /^jitter must not be negative$/);
  await rejects(keyroll.open(keys.uri, { interval: Number.NaN }), 'config', /^interval must be a number of seconds/);
  await rejects(keyroll.open(keys.uri, { interval: 0.001 }), 'config', /^interval must be at least 10ms$/);
  await rejects(keyroll.open(keys.uri, { intervall: 5 }), 'config', /unknown option `intervall`; the options are interval, jitter/);
  // The refusals of automatic rotation are the library's too.
  await rejects(keyroll.open(keys.uri, { rotateEvery: 0 }), 'config');
});

test('a weak key or none at start is refused (kind keys); an unreachable store (kind unavailable)', async () => {
  const weak = new KeyFile();
  weak.add({ key: 'short-secret' });
  await rejects(keyroll.open(weak.uri), 'keys', /weak|short/);
  const empty = new KeyFile();
  empty.write();
  await rejects(keyroll.open(empty.uri), 'keys');
  const port = await freePorts();
  process.env.VAULT_TOKEN = 'root';
  await rejects(keyroll.open(`vault://127.0.0.1:${port}/secret/app?tls=false`), 'unavailable', /127\.0\.0\.1/);
});

test('no message carries key material', async () => {
  const secret = `material-${newKey()}`;
  const weak = new KeyFile();
  weak.add({ key: secret.slice(0, 12) });
  const keys = new KeyFile();
  keys.add({ key: secret });
  const messages = [];
  await keyroll.open(weak.uri).catch((error) => messages.push(error.message));
  const ring = await keyroll.open(keys.uri, { interval: 0.05 });
  try {
    messages.push(JSON.stringify(ring.status()));
    keys.add({ key: 'short' });
    await waitUntil('the weak key to be refused', () => ring.status().lastError !== undefined);
    messages.push(JSON.stringify(ring.status()));
    const signer = ring.djangoSigner();
    for (const token of ['', 'x', `${signer.sign('v')}x`, 'a:b:c']) {
      try {
        signer.unsign(token);
      } catch (error) {
        messages.push(error.message);
      }
    }
  } finally {
    ring.close();
  }
  assert.ok(messages.length >= 6, messages.join('\n'));
  for (const message of messages) {
    assert.ok(!message.includes(secret) && !message.includes(secret.slice(0, 12)), message);
  }
});

test('a weak key published at run time is refused, the last good keys keep serving, status says why', async () => {
  const keys = new KeyFile();
  const good = keys.add({ id: 'v1' });
  const ring = await keyroll.open(keys.uri, { interval: 0.05 });
  try {
    keys.add({ id: 'v2', key: 'short' });
    await waitUntil('the refusal', () => ring.status().health === 'degraded');
    assert.match(ring.status().lastError, /weak|short/);
    assert.deepEqual([...ring.secrets], [good]);
  } finally {
    ring.close();
  }
});

test('the live array: a new key verifies first (second place), then signs; change events; close twice', async () => {
  const keys = new KeyFile();
  const v1 = keys.add({ id: 'v1', created: Date.now() - 60_000 });
  const ring = await keyroll.open(keys.uri, { interval: 0.05, activationDelay: 1 });
  const secrets = ring.secrets;
  const changes = [];
  ring.on('change', (change) => changes.push(change));
  assert.deepEqual([...secrets], [v1]);
  const v2 = keys.add({ id: 'v2', created: Date.now() });
  await waitUntil('v2 to verify', () => secrets.length === 2);
  assert.deepEqual([...secrets], [v1, v2], 'pending: it verifies, v1 still signs');
  assert.deepEqual(
    ring.status().keys.map((key) => `${key.id}:${key.role}`),
    ['v2:pending', 'v1:current'],
  );
  await waitUntil('v2 to sign', () => secrets[0] === v2, 5000);
  assert.deepEqual([...secrets], [v2, v1]);
  assert.equal(ring.secrets, secrets, 'the same array throughout');
  assert.ok(changes.length >= 2 && changes.every((change) => change.refused === null));
  assert.equal(ring.generation, changes.at(-1).generation);

  const status = ring.status();
  assert.equal(status.health, 'healthy');
  assert.equal(status.source, `file://${keys.path}`);
  assert.equal(status.reach, 'local');
  assert.equal(status.rings, 1);
  assert.equal(status.rotation, undefined, 'no automatic rotation');
  assert.equal(status.lastError, undefined);
  ring.close();
  ring.close();
  assert.equal(ring.closed, true);
  assert.equal(secrets.length, 0, 'a closed ring verifies nothing');
  assert.throws(() => ring.status(), (error) => error.kind === 'closed');
  assert.throws(() => ring.djangoSigner(), (error) => error.kind === 'closed');
});

test("rotate is the library's rotation: what was asked is checked first, then the key is published", async () => {
  const keys = new KeyFile();
  const old = keys.add({ id: 'v1' });
  const before = fs.readFileSync(keys.path, 'utf8');
  await rejects(keyroll.rotate(keys.uri, { chars: 5 }), 'config', /would be weak.*nothing was published/);
  await rejects(keyroll.rotate(keys.uri, { chars: 50, bytes: 32 }), 'config', /not both/);
  await rejects(keyroll.rotate(keys.uri, { bytes: 1e9 }), 'config', /at most 4096/);
  await rejects(keyroll.rotate(keys.uri, { chars: 1.5 }), 'config', /^chars must be a whole number, not 1.5$/);
  await rejects(keyroll.rotate(keys.uri, { promote: 'yes' }), 'config', /^promote must be true or false, not a string$/);
  await rejects(keyroll.rotate(keys.uri, { promote: true }), 'config', /no stages to promote.*nothing was published/);
  await rejects(keyroll.rotate(keys.uri, { intervall: 5 }), 'config', /unknown option `intervall`/);
  await rejects(keyroll.rotate(keys.uri, 'now'), 'config', /options must be an object, not a string/);
  assert.equal(fs.readFileSync(keys.path, 'utf8'), before, 'nothing was written');
  process.env.KEYROLL_NODE_NEVER_SET = 'x';
  await rejects(keyroll.rotate('env://KEYROLL_NODE_NEVER_SET'), 'config', /cannot be rotated by keyroll/);

  const ring = await keyroll.open(keys.uri, { interval: 0.05, activationDelay: 0 });
  await rejects(ring.rotate({ size: 3 }), 'config', /^unknown argument `size`; rotate takes chars, bytes, promote, disableOld$/);
  const rotation = await ring.rotate();
  assert.deepEqual(rotation.steps, [`published new key version ${rotation.id}`, 'it signs now']);
  assert.deepEqual([rotation.role, rotation.promoted, rotation.disabled], ['current', false, []]);
  assert.ok(rotation.signsFrom <= Date.now() / 1000 + 1, `signs from ${rotation.signsFrom}: now, not later`);
  assert.equal(rotation.id, rotation.fingerprint, "a file's versions are named by their fingerprint");
  await waitUntil('the rotated key to sign', () => ring.secrets[0] !== old);
  const [now] = ring.secrets;
  assert.equal(now.length, 50);
  assert.deepEqual([...ring.secrets], [now, old]);
  assert.equal(ring.status().keys[0].id, rotation.id);
  assert.ok(!JSON.stringify(rotation).includes(now) && !JSON.stringify(rotation).includes(old));
  ring.close();
  await rejects(ring.rotate(), 'closed');
});

test('a signer made before close refuses after it', async () => {
  const keys = new KeyFile();
  keys.add();
  const ring = await keyroll.open(keys.uri);
  const signer = ring.nativeSigner();
  const token = signer.sign('v');
  ring.close();
  assert.throws(() => signer.unsign(token), (error) => error.kind === 'closed');
});

test('past failClosedAfter without the store, the array empties and the formats refuse', async (t) => {
  const bao = await OpenBao.start(t);
  if (!bao) return;
  process.env.VAULT_TOKEN = OpenBao.TOKEN;
  const key = await bao.put();
  const ring = await keyroll.open(bao.uri(), { interval: 0.1, failClosedAfter: 1 });
  t.after(() => ring.close());
  const signer = ring.djangoSigner();
  const token = signer.sign('v');
  const closed = new Promise((resolve) => ring.on('change', (change) => change.refused && resolve(change)));
  // The ring's watcher does not keep a process alive (a script that opens a
  // ring and ends exits); a server does. Here a timer does.
  const alive = setInterval(() => {}, 100);
  t.after(() => clearInterval(alive));
  bao.stop();
  const change = await closed;
  assert.match(change.refused, /failed closed/);
  assert.equal(ring.secrets.length, 0);
  assert.equal(ring.status().health, 'stale');
  assert.throws(() => signer.unsign(token), keyroll.FailedClosed);
  assert.throws(() => signer.sign('v'), keyroll.FailedClosed);
  assert.throws(() => ring.jwtKey({}), keyroll.FailedClosed);
  assert.ok(key);
});

test('worker threads of a process share its refresher; each has its own live array', async () => {
  const keys = new KeyFile();
  const v1 = keys.add({ id: 'v1' });
  const ring = await keyroll.open(keys.uri, { interval: 0.05 });
  try {
    const worker = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const keyroll = require('keyroll');
      keyroll.open(workerData.uri, { interval: 0.05 }).then((ring) => {
        parentPort.postMessage({ rings: ring.status().rings, secrets: [...ring.secrets] });
        ring.on('change', () => parentPort.postMessage({ secrets: [...ring.secrets] }));
        parentPort.on('message', () => { ring.close(); parentPort.close(); });
      });
      `,
      { eval: true, workerData: { uri: keys.uri }, env: process.env },
    );
    const messages = [];
    worker.on('message', (message) => messages.push(message));
    await waitUntil('the worker to open', () => messages.length > 0);
    assert.equal(messages[0].rings, 2, 'one refresher, held by both rings');
    assert.equal(ring.status().rings, 2);
    assert.deepEqual(messages[0].secrets, [v1]);
    const v2 = keys.add({ id: 'v2' });
    await waitUntil('both arrays to follow', () => ring.secrets[0] === v2 && messages.at(-1).secrets[0] === v2);
    worker.postMessage('close');
    await new Promise((resolve) => worker.once('exit', resolve));
    assert.equal(ring.status().rings, 1);
    assert.deepEqual([...ring.secrets], [v2, v1]);
  } finally {
    ring.close();
  }
});

function python(t) {
  const venv = process.env.KEYROLL_VENV;
  const binary = venv && path.join(venv, 'bin', 'python');
  if (!binary || !fs.existsSync(binary)) {
    missing(t, 'the test venv with Django and cryptography (KEYROLL_VENV)');
    return null;
  }
  return (code, input) => execFileSync(binary, ['-c', code], { input: JSON.stringify(input) }).toString().trim();
}

test("Django's signing and cryptography's Fernet read what the Node formats write, and the reverse", async (t) => {
  const run = python(t);
  if (!run) return;
  const keys = new KeyFile();
  const key = keys.add();
  const ring = await keyroll.open(keys.uri);
  try {
    const django = ring.djangoSigner({ salt: 'app', timestamp: true });
    const token = django.sign('hello');
    const object = ring.djangoSigner({ salt: 'django.core.signing', timestamp: true }).signObject({ user: 'ada', n: 1, text: 'héllo' });
    const answer = JSON.parse(
      run(
        `
import json, sys
from django.conf import settings
data = json.load(sys.stdin)
settings.configure(SECRET_KEY=data["key"])
from django.core import signing
print(json.dumps({
  "plain": signing.TimestampSigner(salt="app").unsign(data["token"], max_age=60),
  "object": signing.loads(data["object"]),
  "theirs": signing.TimestampSigner(salt="app").sign("from django"),
  "dumps": signing.dumps({"a": [1, 2]}),
}))
`,
        { key, token, object },
      ),
    );
    assert.equal(answer.plain, 'hello');
    assert.deepEqual(answer.object, { user: 'ada', n: 1, text: 'héllo' });
    assert.equal(django.unsign(answer.theirs, { maxAge: 60 }), 'from django');
    assert.deepEqual(ring.djangoSigner({ salt: 'django.core.signing', timestamp: true }).unsignObject(answer.dumps), { a: [1, 2] });

    const fernetKeys = new KeyFile();
    const fernetKey = fernetKeys.add({ key: crypto.randomBytes(32).toString('base64url') + '=' });
    const fernetRing = await keyroll.open(fernetKeys.uri);
    try {
      const fernet = fernetRing.fernet();
      const ours = fernet.encrypt('secret data');
      const theirs = run(
        `
import json, sys
from cryptography.fernet import Fernet
data = json.load(sys.stdin)
f = Fernet(data["key"])
assert f.decrypt(data["token"].encode()) == b"secret data"
print(f.encrypt(b"from python").decode())
`,
        { key: fernetKey, token: ours },
      );
      assert.equal(fernet.decrypt(theirs).toString(), 'from python');
      assert.throws(() => fernet.decrypt(`${theirs.slice(0, -4)}AAAA`), keyroll.InvalidToken);
    } finally {
      fernetRing.close();
    }
  } finally {
    ring.close();
  }
});

test('the native signer and bad tokens: BadSignature, SignatureExpired', async () => {
  const keys = new KeyFile();
  keys.add();
  const ring = await keyroll.open(keys.uri);
  try {
    const signer = ring.nativeSigner({ salt: 's', maxAge: 1 });
    const token = signer.sign('value');
    assert.deepEqual(
      { ...signer.verify(token), timestamp: null },
      { value: 'value', keyId: ring.status().keys[0].id, role: 'current', needsResign: false, timestamp: null },
    );
    assert.throws(() => signer.unsign(`${token}x`), keyroll.BadSignature);
    await sleep(2200);
    assert.throws(() => signer.unsign(token), keyroll.SignatureExpired);
    assert.throws(() => ring.nativeSigner({ maxAge: -1 }), /maxAge must be a number of seconds/);
    assert.throws(() => ring.djangoSigner({ algorithm: 'md5' }), (error) => error.kind === 'config');
    assert.throws(() => ring.fernet({ derive: 'rot13' }), (error) => error.kind === 'config');
  } finally {
    ring.close();
  }
});

test('the docs and the types name every option of the library table', () => {
  const root = path.join(__dirname, '..', '..', '..');
  const guide = fs.readFileSync(path.join(root, 'docs', 'NODE.md'), 'utf8');
  const types = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  assert.ok(keyroll.OPTIONS.length >= 8);
  for (const option of keyroll.OPTIONS) {
    assert.ok(guide.includes(`\`${option.name}\``), `docs/NODE.md does not name ${option.name}`);
    assert.ok(types.includes(`  ${option.name}?: number;`), `index.d.ts does not type ${option.name}`);
  }
});

test('a refused key set is logged to stderr (KEYROLL_LOG), without its material', async () => {
  const keys = new KeyFile();
  keys.add({ id: 'v1' });
  const weak = 'weak-key-material';
  const script = `
    const keyroll = require('keyroll');
    const fs = require('node:fs');
    (async () => {
      const ring = await keyroll.open(${JSON.stringify(keys.uri)}, { interval: 0.05 });
      const file = ${JSON.stringify(keys.path)};
      const entries = JSON.parse(fs.readFileSync(file, 'utf8')).keys;
      entries.unshift({ id: 'v2', key: ${JSON.stringify(weak)} });
      fs.writeFileSync(file + '.tmp', JSON.stringify({ keys: entries }));
      fs.renameSync(file + '.tmp', file);
      const deadline = Date.now() + 10000;
      while (ring.status().health !== 'degraded' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      ring.close();
    })();
  `;
  const { spawnSync } = require('node:child_process');
  const run = spawnSync(process.execPath, ['-e', script], {
    cwd: __dirname,
    encoding: 'utf8',
    env: { ...process.env, KEYROLL_LOG: 'warn' },
    timeout: 30000,
  });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /WARN/);
  assert.match(run.stderr, /weak|short/);
  assert.ok(!run.stderr.includes(weak), run.stderr);
});
