'use strict';
// What the keyroll npm package costs, each side against the fastest plain
// Node doing the same work, in one run (keyroll-bench runs it for
// docs/BENCHMARKS.md):
//
// - verify: Django-format `unsign` and native `verify` of the package against
//   Node's own crypto doing the same bytes and the same compare: the salted
//   key derived once (as keyroll derives it once per key set), then one
//   HMAC-SHA256 per token through crypto.createHmac (with the raw key or a
//   KeyObject, whichever is faster in the run), base64url, timingSafeEqual,
//   and for native the payload decoded. Interleaved rounds, best round each.
// - Express: the same Express 5 site (cookie-parser signed cookie and
//   express-session, both re-signed on every answer) given `ring.secrets`
//   or a static array of the same key, both in one process on two ports; a
//   keep-alive load loop of 8 clients on each in turn, in short slices; the
//   ratio of the requests each side served in the same total time.
//
//   node bench.js [--json] [--quick]
// Runs with the package and the test dependencies installed in ../test/node_modules.

const crypto = require('node:crypto');
const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
// The tests' site and HTTP client: the same app the tests pin, the same cookie jar.
const site = require('../test/fixtures/site.js');
const { request } = require('../test/helpers.js');

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');

function keyFile(key) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'keyroll-node-bench-'));
  const file = path.join(directory, 'keys.json');
  fs.writeFileSync(file, JSON.stringify({ keys: [{ id: 'v1', key }] }), { mode: 0o600 });
  return `file://${file}`;
}

/** Best ns per call over interleaved rounds of each function. */
function interleaved(functions, { rounds, iterations }) {
  const best = functions.map(() => Number.POSITIVE_INFINITY);
  for (let round = 0; round < rounds; round++) {
    functions.forEach((fn, i) => {
      const start = process.hrtime.bigint();
      for (let n = 0; n < iterations; n++) fn();
      const ns = Number(process.hrtime.bigint() - start) / iterations;
      best[i] = Math.min(best[i], ns);
    });
  }
  return best;
}

function equalText(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

async function verifyRows(keyroll) {
  const secret = crypto.randomBytes(32).toString('base64url');
  const ring = await keyroll.open(keyFile(secret));
  const value = 'user:1042|session:7d1c0e3a-5a6e-4b8f-9b4e-2f1f0c1d2e3f';
  const effort = quick ? { rounds: 3, iterations: 20000 } : { rounds: 15, iterations: 200000 };
  const rows = [];
  try {
    // Django's Signer(salt="bench"): HMAC-SHA256 keyed with sha256(salt + "signer" + key).
    const django = ring.djangoSigner({ salt: 'bench' });
    const djangoToken = django.sign(value);
    const djangoKey = crypto.createHash('sha256').update(`benchsigner${secret}`).digest();
    const djangoKeyObject = crypto.createSecretKey(djangoKey);
    const plainDjango = (key) => () => {
      const at = djangoToken.lastIndexOf(':');
      const signed = djangoToken.slice(0, at);
      const mac = crypto.createHmac('sha256', key).update(signed).digest('base64url');
      if (!equalText(mac, djangoToken.slice(at + 1))) throw new Error('the baseline refused the token');
      return signed;
    };
    if (plainDjango(djangoKey)() !== value || django.unsign(djangoToken) !== value) throw new Error('not the same work');
    const [djangoKeyroll, djangoRaw, djangoObject] = interleaved(
      [() => django.unsign(djangoToken), plainDjango(djangoKey), plainDjango(djangoKeyObject)],
      effort,
    );
    rows.push({ case: 'Django-format verify', keyroll_ns: djangoKeyroll, node_ns: Math.min(djangoRaw, djangoObject) });

    // keyroll's native format: kr1.<kid>.<payload>.<mac>, MAC keyed with
    // HMAC-SHA256(key, "keyroll/v1/native\0" + salt) over all before the last dot.
    const native = ring.nativeSigner({ salt: 'bench' });
    const nativeToken = native.sign(value);
    const nativeKey = crypto.createHmac('sha256', secret).update('keyroll/v1/native\0bench').digest();
    const nativeKeyObject = crypto.createSecretKey(nativeKey);
    const kid = nativeToken.split('.')[1];
    const plainNative = (key) => () => {
      const at = nativeToken.lastIndexOf('.');
      const parts = nativeToken.slice(0, at).split('.');
      if (parts.length !== 3 || parts[0] !== 'kr1' || parts[1] !== kid) throw new Error('malformed');
      const mac = crypto.createHmac('sha256', key).update(nativeToken.slice(0, at)).digest('base64url');
      if (!equalText(mac, nativeToken.slice(at + 1))) throw new Error('the baseline refused the token');
      return Buffer.from(parts[2], 'base64url').toString('utf8');
    };
    if (plainNative(nativeKey)() !== value || native.unsign(nativeToken) !== value) throw new Error('not the same work');
    const [nativeKeyroll, nativeRaw, nativeObject] = interleaved(
      [() => native.unsign(nativeToken), plainNative(nativeKey), plainNative(nativeKeyObject)],
      effort,
    );
    rows.push({ case: 'native verify', keyroll_ns: nativeKeyroll, node_ns: Math.min(nativeRaw, nativeObject) });
  } finally {
    ring.close();
  }
  return rows;
}

/** The two sites, in one child process: ports of the one given `ring.secrets` and of the one given a static copy. */
function sites(uri) {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--sites', uri], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.once('message', (ports) => resolve({ child, ports }));
    child.once('exit', (code) => reject(new Error(`the sites exited (${code})`)));
  });
}

function siteWith(secrets) {
  const app = site(secrets);
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function serveSites(uri) {
  const keyroll = require('keyroll');
  const ring = await keyroll.open(uri);
  const ports = { keyroll: await siteWith(ring.secrets), static: await siteWith([...ring.secrets]) };
  process.send(ports);
}

/** Requests per second of 8 logged-in clients on keep-alive connections for `ms`. */
async function load(port, ms) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let done = 0;
  const until = Date.now() + ms;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const jar = new Map();
      await request(port, { method: 'POST', path: '/login', jar, agent });
      while (Date.now() < until) {
        if ((await request(port, { path: '/whoami', jar, agent })).body !== 'ada|ada') {
          throw new Error('a session was lost');
        }
        done++;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  return done / seconds;
}

function sum(values) {
  return values.reduce((total, value) => total + value, 0);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function expressRow() {
  const uri = keyFile(crypto.randomBytes(32).toString('base64url'));
  const { child, ports } = await sites(uri);
  const rounds = quick ? 2 : 60;
  const ms = quick ? 300 : 250;
  const rates = { keyroll: [], static: [] };
  try {
    await load(ports.keyroll, 300);
    await load(ports.static, 300);
    for (let round = 0; round < rounds; round++) {
      // Each round measures both sides back to back, in alternating order.
      const order = round % 2 ? ['static', 'keyroll'] : ['keyroll', 'static'];
      const rate = {};
      for (const side of order) rate[side] = await load(ports[side], ms);
      rates.keyroll.push(rate.keyroll);
      rates.static.push(rate.static);
    }
  } finally {
    child.kill();
  }
  return {
    case: 'Express request (cookie-parser + express-session)',
    keyroll_rps: median(rates.keyroll),
    static_rps: median(rates.static),
    // The requests each side served in the same total time, its slices
    // interleaved with the other's: drift of the machine's speed hits both.
    ratio: sum(rates.static) / sum(rates.keyroll),
    rounds,
    seconds_per_round: ms / 1000,
  };
}

async function main() {
  if (process.argv[2] === '--sites') {
    await serveSites(process.argv[3]);
    return;
  }
  const keyroll = require('keyroll');
  const result = {
    node: process.version,
    express: require('express/package.json').version,
    express_session: require('express-session/package.json').version,
    cookie_parser: require('cookie-parser/package.json').version,
    verify: await verifyRows(keyroll),
    express_request: await expressRow(),
  };
  if (asJson) {
    console.log(JSON.stringify(result));
  } else {
    for (const row of result.verify) {
      console.log(`${row.case}: keyroll ${row.keyroll_ns.toFixed(0)} ns, Node ${row.node_ns.toFixed(0)} ns, ${(row.keyroll_ns / row.node_ns).toFixed(2)}x`);
    }
    const e = result.express_request;
    console.log(`${e.case}: ${e.keyroll_rps.toFixed(0)} req/s with ring.secrets, ${e.static_rps.toFixed(0)} static, ${e.ratio.toFixed(3)}x the time per request`);
  }
}

main().catch((error) => {
  console.error(`bench: ${error.stack || error}`);
  process.exit(1);
});
