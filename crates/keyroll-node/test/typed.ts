// A typed Express site using every part of the keyroll API, checked by
// `tsc --strict` (types.test.js): what a TypeScript user's checker reads.
import cookieParser from 'cookie-parser';
import express from 'express';
import session from 'express-session';
import * as keyroll from 'keyroll';
import { ready } from 'keyroll/express';

async function main(): Promise<void> {
  const ring: keyroll.KeyRing = await keyroll.open('vault://vault:8200/secret/app', {
    interval: 30,
    activationDelay: 90,
    failClosedAfter: 3600,
    maxFallbacks: 4,
  });
  const app = express();
  app.use(cookieParser(ring.secrets as string[]));
  app.use(session({ secret: ring.secrets as string[], resave: false, saveUninitialized: false }));
  app.get('/ready', ready(ring));
  app.get('/healthz', keyroll.express.ready(ring));
  ring.on('change', (change: keyroll.Change) => {
    const refused: string | null = change.refused;
    console.log(change.generation, refused);
  });
  const status: keyroll.RingStatus = ring.status();
  const health: 'healthy' | 'degraded' | 'stale' | 'stopped' = status.health;
  const roles: string[] = status.keys.map((key) => `${key.id}:${key.role}`);
  const due: number | undefined = status.rotation?.nextDue;
  console.log(health, roles, due, status.rings);

  const django = ring.djangoSigner({ salt: 'app', timestamp: true });
  const token: string = django.sign('value');
  const value: string = django.unsign(token, { maxAge: 60 });
  const loaded: keyroll.Json = django.unsignObject(django.signObject({ user: 'ada' }));
  const verified: keyroll.Verified<string> = ring.nativeSigner({ salt: 's' }).verify(token);
  const plain: Buffer = ring.fernet({ derive: 'hkdf' }).decrypt(ring.fernet().encrypt('x'), { ttl: 60 });
  const jwt = ring.jwt({ issuer: 'me', leeway: 30 });
  const claims = jwt.verify(jwt.sign({ sub: 'ada' }, { ttl: 60 })).claims;
  const key: Buffer = ring.jwtKey({ kid: 'v1' });
  const signing: { kid: string; key: Buffer } = ring.jwtSigningKey();
  console.log(value, loaded, verified.needsResign, plain.length, claims.sub, key.length, signing.kid);

  const rotated: keyroll.Rotated = await ring.rotate({ bytes: 32 });
  const published = await keyroll.rotate('file:///run/myapp/keys.json', { chars: 64, activationDelay: 0 });
  const signsFrom: number | null = published.signsFrom;
  const role: 'current' | 'pending' | null = rotated.role;
  console.log(rotated.steps.join('\n'), published.id, signsFrom, role);

  for (const option of keyroll.OPTIONS) {
    const unit: 'seconds' | 'count' = option.unit;
    console.log(option.name, unit);
  }
  try {
    ring.refreshNow();
  } catch (error) {
    if (error instanceof keyroll.FailedClosed || error instanceof keyroll.SignatureExpired) {
      const kind: keyroll.KeyrollError['kind'] = error.kind;
      console.log(kind);
    }
  }
  ring.close();
}

void main();
