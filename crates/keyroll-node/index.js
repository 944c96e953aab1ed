'use strict';
// keyroll for Node: live key rings whose rules (staged activation, fail
// closed, revocation, expiry, the options' bounds) are keyroll's Rust core's.
// This file keeps `ring.secrets` in step with what the core serves and turns
// native errors into classes; docs/NODE.md says how to use it.

const { EventEmitter } = require('node:events');
const path = require('node:path');

function loadNative() {
  const file = path.join(__dirname, 'keyroll.node');
  try {
    return require(file);
  } catch (error) {
    if (error.code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error(
      `keyroll: the native module ${file} is not built. Install the tarball \`npm pack\` makes ` +
        '(scripts/release puts one in dist/), or build it here with `node build.js` (needs Rust).',
    );
  }
}

const native = loadNative();

/** A keyroll failure; `kind` says which: `config`, `keys`, `unavailable`, `closed`. */
class KeyrollError extends Error {
  constructor(message, kind) {
    super(message);
    this.name = new.target.name;
    this.kind = kind;
  }
}

/** The ring serves no key: the store revoked the signing key, every key is past its expiry, or the store has not confirmed the keys for longer than failClosedAfter. */
class FailedClosed extends KeyrollError {
  constructor(message) {
    super(message, 'keys');
  }
}

/** A signed value that does not verify. */
class BadSignature extends KeyrollError {
  constructor(message) {
    super(message, 'token');
  }
}

/** A valid signature older than the allowed maximum age. */
class SignatureExpired extends BadSignature {}

/** A Fernet token that no accepted key decrypts, or that has expired. */
class InvalidToken extends KeyrollError {
  constructor(message) {
    super(message, 'token');
  }
}

const ERRORS = {
  KEYROLL_CONFIG: (message) => new KeyrollError(message, 'config'),
  KEYROLL_KEYS: (message) => new KeyrollError(message, 'keys'),
  KEYROLL_UNAVAILABLE: (message) => new KeyrollError(message, 'unavailable'),
  KEYROLL_CLOSED: (message) => new KeyrollError(message, 'closed'),
  KEYROLL_FAILED_CLOSED: (message) => new FailedClosed(message),
  KEYROLL_BAD_SIGNATURE: (message) => new BadSignature(message),
  KEYROLL_SIGNATURE_EXPIRED: (message) => new SignatureExpired(message),
  KEYROLL_INVALID_TOKEN: (message) => new InvalidToken(message),
};

function classify(error) {
  const make = error && ERRORS[error.code];
  return make ? make(error.message) : error;
}

function call(thunk) {
  try {
    return thunk();
  } catch (error) {
    throw classify(error);
  }
}

/** The library's option table, under the names `open` takes. */
const OPTIONS = Object.freeze(native.optionTable().map((row) => Object.freeze(row)));

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** `value` as an object of named arguments: `{}` for none, a `config` error for anything but an object. */
function named(value, what) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new KeyrollError(`the ${what} must be an object, not ${describe(value)}`, 'config');
  }
  return value;
}

/** `options` as the native side takes them: `[{ name, value }]`, numbers only. */
function optionPairs(options) {
  options = named(options, 'options');
  const pairs = [];
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    const row = OPTIONS.find((option) => option.name === name);
    if (row && typeof value !== 'number') {
      const unit = row.unit === 'count' ? 'a whole number' : 'a number of seconds';
      throw new KeyrollError(`${name} must be ${unit}, not ${describe(value)}`, 'config');
    }
    // An unknown name goes through: the library names the options it knows.
    pairs.push({ name, value: typeof value === 'number' ? value : Number.NaN });
  }
  return pairs;
}

/** What `rotate` takes besides the options of `open`. */
const ROTATE_ARGS = Object.freeze(['chars', 'bytes', 'promote', 'disableOld']);

/** `rotate`'s own arguments as the native side takes them (numbers and booleans; the library checks the rest). */
function rotateArgs(args) {
  const checked = {};
  for (const [name, value] of Object.entries(named(args, 'arguments'))) {
    if (!ROTATE_ARGS.includes(name)) {
      throw new KeyrollError(`unknown argument \`${name}\`; rotate takes ${ROTATE_ARGS.join(', ')}`, 'config');
    }
    if (value === undefined || value === null) continue;
    const kind = name === 'chars' || name === 'bytes' ? 'number' : 'boolean';
    if (typeof value !== kind) {
      const what = kind === 'number' ? 'a whole number' : 'true or false';
      throw new KeyrollError(`${name} must be ${what}, not ${describe(value)}`, 'config');
    }
    checked[name] = value;
  }
  return checked;
}

/** A native task's `{ code, message }` failure as the class it names. */
function failure(failed) {
  return classify(Object.assign(new Error(failed.message), { code: failed.code }));
}

/** A native rotation's answer: what it did, or its failure thrown as a class. */
function rotated(done) {
  if (typeof done.code === 'string') throw failure(done);
  return { ...done, role: done.role ?? null, signsFrom: done.signsFrom ?? null };
}

function sameSecret(a, b) {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
}

function sameSecrets(a, b) {
  return a.length === b.length && a.every((secret, i) => sameSecret(secret, b[i]));
}

function asBuffer(secret) {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
}

/** JSON as Django writes it (`json.dumps(separators=(",", ":"))`): compact, non-ASCII escaped. */
function djangoJson(value) {
  const text = JSON.stringify(value);
  if (text === undefined) {
    throw new KeyrollError(`${describe(value)} cannot be written as JSON`, 'config');
  }
  return text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function verified(result, parse) {
  return {
    value: parse ? JSON.parse(result.value) : result.value,
    keyId: result.keyId,
    role: result.role,
    needsResign: result.needsResign,
    timestamp: result.timestamp ?? null,
  };
}

/** Django's `Signer` / `TimestampSigner` (djangoSigner). */
class DjangoSigner {
  #native;
  constructor(nativeSigner) {
    this.#native = nativeSigner;
  }
  sign(value) {
    return call(() => this.#native.sign(String(value)));
  }
  verify(token, { maxAge } = {}) {
    return verified(call(() => this.#native.verify(String(token), maxAge)));
  }
  unsign(token, { maxAge } = {}) {
    return this.verify(token, { maxAge }).value;
  }
  /** Django's `signing.dumps`. */
  signObject(value, { compress = false } = {}) {
    return call(() => this.#native.signObject(djangoJson(value), Boolean(compress)));
  }
  /** `signing.loads`, with the key that verified. */
  verifyObject(token, { maxAge } = {}) {
    return verified(
      call(() => this.#native.verifyObject(String(token), maxAge)),
      true,
    );
  }
  unsignObject(token, { maxAge } = {}) {
    return this.verifyObject(token, { maxAge }).value;
  }
}

/** keyroll's native signer (nativeSigner). */
class NativeSigner {
  #native;
  constructor(nativeSigner) {
    this.#native = nativeSigner;
  }
  sign(value) {
    return call(() => this.#native.sign(String(value)));
  }
  verify(token) {
    return verified(call(() => this.#native.verify(String(token))));
  }
  unsign(token) {
    return this.verify(token).value;
  }
}

/** `MultiFernet` over the ring (fernet). */
class Fernet {
  #native;
  constructor(nativeFernet) {
    this.#native = nativeFernet;
  }
  encrypt(data) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    return call(() => this.#native.encrypt(bytes));
  }
  decrypt(token, { ttl } = {}) {
    return call(() => this.#native.decrypt(String(token), ttl));
  }
  rotate(token) {
    return call(() => this.#native.rotate(String(token)));
  }
}

/** keyroll's JWT signer (jwt): HS256, `kid` the key's id. */
class JwtSigner {
  #native;
  constructor(nativeJwt) {
    this.#native = nativeJwt;
  }
  sign(claims, { ttl } = {}) {
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
      throw new KeyrollError(`the claims must be an object, not ${describe(claims)}`, 'config');
    }
    return call(() => this.#native.sign(JSON.stringify(claims), ttl));
  }
  verify(token) {
    const result = verified(call(() => this.#native.verify(String(token))), true);
    return { claims: result.value, keyId: result.keyId, role: result.role, needsResign: result.needsResign };
  }
}

/**
 * A live key ring. `secrets` is one array, kept for the life of the ring and
 * updated in place at every change of what the core serves: the signing key
 * first, then every key that only verifies. Give it to express-session or
 * cookie-parser as is.
 */
class KeyRing extends EventEmitter {
  #native;
  #generation = 0;
  #refused = null;

  constructor(nativeRing) {
    super();
    this.#native = nativeRing;
    /** @type {(string|Buffer)[]} */
    this.secrets = [];
    Object.defineProperty(this, 'secrets', { writable: false, enumerable: true });
    this.#apply();
    nativeRing.watch(() => {
      try {
        this.#apply();
      } catch (error) {
        // Closed between the wake and this turn: close() emptied the array.
        if (!(error instanceof KeyrollError && error.kind === 'closed')) throw error;
      }
    });
  }

  /** Brings `secrets` to what the core serves now; one synchronous step. */
  #apply() {
    if (this.#native.closed) return;
    const snapshot = call(() => this.#native.snapshot());
    const refused = snapshot.refused ?? null;
    if (
      snapshot.generation === this.#generation &&
      refused === this.#refused &&
      sameSecrets(this.secrets, snapshot.secrets)
    ) {
      return;
    }
    // In place, in one turn of the event loop: no request sees a half-made array.
    this.secrets.splice(0, this.secrets.length, ...snapshot.secrets);
    this.#generation = snapshot.generation;
    this.#refused = refused;
    this.emit('change', { generation: snapshot.generation, refused });
  }

  /** The key set's generation when `secrets` was last brought up to date. */
  get generation() {
    return this.#generation;
  }

  /** Why nothing is served (`secrets` is empty), while so; else null. */
  get refused() {
    return this.#refused;
  }

  get closed() {
    return this.#native.closed;
  }

  status() {
    return call(() => this.#native.status());
  }

  refreshNow() {
    call(() => this.#native.refreshNow());
  }

  /**
   * Publishes a new key in this ring's store, as `keyroll.rotate` does with
   * the options the ring was opened with; the ring picks it up at its next
   * poll (or `refreshNow()`).
   */
  async rotate(args) {
    const checked = rotateArgs(args);
    return rotated(await call(() => this.#native.rotate(checked)));
  }

  /** The key a JWT header's `kid` names, as a Buffer, if it verifies now (the signing key for a header without `kid`): for jsonwebtoken's and jose's key lookups. */
  jwtKey(header) {
    const kid = header && typeof header.kid === 'string' ? header.kid : undefined;
    return asBuffer(call(() => this.#native.verifyingKey(kid)));
  }

  /** `{ kid, key }` of the signing key, for jsonwebtoken's `sign` (`keyid: kid`). */
  jwtSigningKey() {
    const { kid, key } = call(() => this.#native.signingKey());
    return { kid, key: asBuffer(key) };
  }

  djangoSigner({ salt, timestamp = false, sep = ':', algorithm = 'sha256' } = {}) {
    return new DjangoSigner(
      call(() => this.#native.djangoSigner(salt ?? undefined, Boolean(timestamp), String(sep), String(algorithm))),
    );
  }

  nativeSigner({ salt = '', timestamp = false, maxAge } = {}) {
    return new NativeSigner(call(() => this.#native.nativeSigner(String(salt), Boolean(timestamp), maxAge)));
  }

  fernet({ derive = 'raw' } = {}) {
    return new Fernet(call(() => this.#native.fernet(String(derive))));
  }

  jwt({ issuer, audience, leeway } = {}) {
    return new JwtSigner(call(() => this.#native.jwt(issuer, audience, leeway)));
  }

  /** Stops following the store; `secrets` empties (nothing verifies through a closed ring). Idempotent. */
  close() {
    if (this.#native.closed) return;
    this.#native.close();
    this.secrets.length = 0;
    this.emit('close');
  }
}

/**
 * Opens the key source `uri` (`vault://…`, `aws-sm://…`, `gcp-sm://…`,
 * `file://…`, `env://…`, `docker://…`) and resolves once a first good key
 * set is in. Options are keyroll's table, durations in seconds.
 */
async function open(uri, options) {
  if (typeof uri !== 'string') {
    throw new KeyrollError(`the URI must be a string, not ${describe(uri)}`, 'config');
  }
  const pairs = optionPairs(options);
  const opened = await call(() => native.open(uri, pairs));
  if (opened instanceof native.NativeRing) {
    return new KeyRing(opened);
  }
  throw failure(opened);
}

/**
 * Publishes a new key in the store `uri` names, as `keyroll rotate` does
 * (the same Rust code): `chars` characters of Django's alphabet or `bytes`
 * random bytes (base64), by default the form of the key the store serves;
 * `promote` makes it the store's current version, `disableOld` disables what
 * the policy has retired. The other options are `open`'s: they decide when
 * the key signs and what is retired. Resolves with `{ id, fingerprint,
 * promoted, role, signsFrom, disabled, steps }`; rejects with a
 * `KeyrollError` (`config` when nothing was published because of what was
 * asked) whose message names any step already done.
 */
async function rotate(uri, options) {
  if (typeof uri !== 'string') {
    throw new KeyrollError(`the URI must be a string, not ${describe(uri)}`, 'config');
  }
  const args = {};
  const storeOptions = {};
  for (const [name, value] of Object.entries(named(options, 'options'))) {
    (ROTATE_ARGS.includes(name) ? args : storeOptions)[name] = value;
  }
  const pairs = optionPairs(storeOptions);
  const checked = rotateArgs(args);
  return rotated(await call(() => native.rotate(uri, pairs, checked)));
}

module.exports = {
  open,
  rotate,
  KeyRing,
  KeyrollError,
  FailedClosed,
  BadSignature,
  SignatureExpired,
  InvalidToken,
  OPTIONS,
  express: require('./express.js'),
};
