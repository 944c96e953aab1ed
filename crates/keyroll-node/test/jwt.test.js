'use strict';
// JWTs across a rotation: jsonwebtoken and jose verify keyroll's tokens
// through ring.jwtKey (the key their `kid` names), and keyroll verifies
// theirs, signed with ring.jwtSigningKey.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const jose = require('jose');
const jsonwebtoken = require('jsonwebtoken');
const keyroll = require('keyroll');
const { KeyFile, waitUntil } = require('./helpers.js');

/** jsonwebtoken's verify with a key lookup, as a promise. */
function verifyWithJsonwebtoken(ring, token) {
  return new Promise((resolve, reject) => {
    const lookup = (header, callback) => {
      try {
        callback(null, ring.jwtKey(header));
      } catch (error) {
        callback(error);
      }
    };
    jsonwebtoken.verify(token, lookup, { algorithms: ['HS256'] }, (error, claims) =>
      error ? reject(error) : resolve(claims),
    );
  });
}

async function verifyWithJose(ring, token) {
  const { payload } = await jose.jwtVerify(token, (header) => ring.jwtKey(header), { algorithms: ['HS256'] });
  return payload;
}

function signWithJsonwebtoken(ring, claims) {
  const { kid, key } = ring.jwtSigningKey();
  return jsonwebtoken.sign(claims, key, { algorithm: 'HS256', keyid: kid, expiresIn: 60 });
}

async function signWithJose(ring, claims) {
  const { kid, key } = ring.jwtSigningKey();
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', kid })
    .setIssuedAt()
    .setExpirationTime('1m')
    .sign(key);
}

test('jsonwebtoken and jose verify keyroll JWTs, and keyroll theirs, before and after a rotation', async () => {
  const keys = new KeyFile();
  keys.add({ id: 'v1' });
  const ring = await keyroll.open(keys.uri, { interval: 0.05 });
  try {
    const jwt = ring.jwt();
    const before = {
      keyroll: jwt.sign({ sub: 'ada' }, { ttl: 60 }),
      jsonwebtoken: signWithJsonwebtoken(ring, { sub: 'bob' }),
      jose: await signWithJose(ring, { sub: 'cy' }),
    };
    assert.equal(jose.decodeProtectedHeader(before.keyroll).kid, 'v1');

    const v2 = keys.add({ id: 'v2' });
    await waitUntil('v2 to sign', () => ring.secrets[0] === v2);
    const after = {
      keyroll: jwt.sign({ sub: 'ada' }, { ttl: 60 }),
      jsonwebtoken: signWithJsonwebtoken(ring, { sub: 'bob' }),
      jose: await signWithJose(ring, { sub: 'cy' }),
    };
    assert.equal(jose.decodeProtectedHeader(after.keyroll).kid, 'v2');
    assert.equal(jose.decodeProtectedHeader(after.jose).kid, 'v2');

    for (const [when, tokens, role] of [
      ['before', before, 'fallback'],
      ['after', after, 'current'],
    ]) {
      assert.equal((await verifyWithJsonwebtoken(ring, tokens.keyroll)).sub, 'ada', when);
      assert.equal((await verifyWithJose(ring, tokens.keyroll)).sub, 'ada', when);
      const theirs = jwt.verify(tokens.jsonwebtoken);
      assert.equal(theirs.claims.sub, 'bob', when);
      assert.equal(theirs.role, role, when);
      assert.equal(theirs.needsResign, role !== 'current', when);
      assert.equal(jwt.verify(tokens.jose).claims.sub, 'cy', when);
    }

    // A token naming a key the ring does not hold, or tampered, is refused by all three.
    const forged = jsonwebtoken.sign({ sub: 'eve' }, 'x'.repeat(48), { algorithm: 'HS256', keyid: 'v9' });
    // jsonwebtoken wraps what the lookup throws.
    await assert.rejects(verifyWithJsonwebtoken(ring, forged), /no key that verifies now has this kid/);
    await assert.rejects(verifyWithJose(ring, forged), keyroll.BadSignature);
    assert.throws(() => jwt.verify(forged), keyroll.BadSignature);
    const tampered = `${after.keyroll.slice(0, -2)}AA`;
    await assert.rejects(verifyWithJsonwebtoken(ring, tampered), /invalid signature/);
    assert.throws(() => jwt.verify(tampered), keyroll.BadSignature);
  } finally {
    ring.close();
  }
});

test('an expired keyroll JWT is SignatureExpired; claims must be an object', async () => {
  const keys = new KeyFile();
  keys.add();
  const ring = await keyroll.open(keys.uri);
  try {
    const jwt = ring.jwt({ leeway: 0 });
    const token = jsonwebtoken.sign({ sub: 'ada', exp: Math.floor(Date.now() / 1000) - 10 }, ring.jwtSigningKey().key, {
      algorithm: 'HS256',
      keyid: ring.jwtSigningKey().kid,
    });
    assert.throws(() => jwt.verify(token), keyroll.SignatureExpired);
    assert.throws(() => jwt.sign('ada'), /claims must be an object, not a string/);
  } finally {
    ring.close();
  }
});
