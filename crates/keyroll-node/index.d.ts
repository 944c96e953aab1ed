// Types of the keyroll npm package. docs/NODE.md has the guide.

import { EventEmitter } from 'node:events';

/** A duration in seconds, or a whole number (maxFallbacks). */
export interface OpenOptions {
  /** Time between two reads of the store, seconds (at least 0.01; default 30). */
  interval?: number;
  /** Random spread added to each interval, seconds. */
  jitter?: number;
  /** Margin for clock skew between hosts, added to the default activation delay of shared stores, seconds. */
  clockSkewMargin?: number;
  /** How long a new key only verifies before it signs, seconds. */
  activationDelay?: number;
  /** How long a superseded key keeps verifying, seconds. */
  fallbackWindow?: number;
  /** How many superseded keys keep verifying at most. */
  maxFallbacks?: number;
  /** Serve no key once the store has not confirmed the keys for this long, seconds. */
  failClosedAfter?: number;
  /** Publish a new key once the newest is this old (stores with compare-and-set), seconds. */
  rotateEvery?: number;
}

/** An entry of the library's option table. */
export interface OptionRow {
  readonly name: keyof OpenOptions;
  readonly unit: 'seconds' | 'count';
  readonly default: string;
  readonly doc: string;
}

/** The options `open` takes, from the library's table. */
export const OPTIONS: readonly OptionRow[];

/** Key material: text when it is UTF-8, else bytes. */
export type Secret = string | Buffer;

export interface KeyStatus {
  id: string;
  role: 'current' | 'pending' | 'fallback' | 'retired';
}

export interface RotationState {
  periodSeconds: number;
  /** Unix seconds. */
  nextDue?: number;
  published: number;
  lost: number;
  retired: number;
  lastError?: string;
}

/** The refresher's state. Never key material. */
export interface RingStatus {
  health: 'healthy' | 'degraded' | 'stale' | 'stopped';
  lastError?: string;
  stalenessSeconds: number;
  generation: number;
  source: string;
  consecutiveFailures: number;
  reach: 'local' | 'shared';
  activationDelaySeconds: number;
  /** With `rotateEvery`. */
  rotation?: RotationState;
  keys: KeyStatus[];
  /** Open rings of this process (worker threads included) sharing its refresher. */
  rings: number;
}

export interface Change {
  generation: number;
  /** Why nothing is served (`secrets` is empty), while so. */
  refused: string | null;
}

export interface Verified<T> {
  value: T;
  keyId: string;
  role: 'current' | 'pending' | 'fallback';
  /** A key other than the current one verified: sign again. */
  needsResign: boolean;
  /** Unix seconds, for timestamped tokens. */
  timestamp: number | null;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Django's `Signer` / `TimestampSigner`. */
export interface DjangoSigner {
  sign(value: string): string;
  verify(token: string, options?: { maxAge?: number }): Verified<string>;
  unsign(token: string, options?: { maxAge?: number }): string;
  /** Django's `signing.dumps`. */
  signObject(value: Json, options?: { compress?: boolean }): string;
  verifyObject(token: string, options?: { maxAge?: number }): Verified<Json>;
  /** Django's `signing.loads`. */
  unsignObject(token: string, options?: { maxAge?: number }): Json;
}

/** keyroll's native signer. */
export interface NativeSigner {
  sign(value: string): string;
  verify(token: string): Verified<string>;
  unsign(token: string): string;
}

/** `MultiFernet` over the ring. */
export interface Fernet {
  encrypt(data: string | Uint8Array): string;
  decrypt(token: string, options?: { ttl?: number }): Buffer;
  rotate(token: string): string;
}

export interface VerifiedJwt {
  claims: { [claim: string]: Json };
  keyId: string;
  role: 'current' | 'pending' | 'fallback';
  needsResign: boolean;
}

/** keyroll's JWT signer: HS256, `kid` the key's id. */
export interface JwtSigner {
  sign(claims: { [claim: string]: Json }, options?: { ttl?: number }): string;
  verify(token: string): VerifiedJwt;
}

/** What a rotation publishes besides the key: the key's form and what happens to older versions. */
export interface RotateArgs {
  /** Characters of Django's alphabet (not with `bytes`); by default the form of the key the store serves. */
  chars?: number;
  /** Random bytes, written as base64 (not with `chars`). */
  bytes?: number;
  /** Make the new version the store's current one (stores with stages). */
  promote?: boolean;
  /** Disable the versions the policy has retired (stores with states). */
  disableOld?: boolean;
}

/** What a rotation did. */
export interface Rotated {
  id: string;
  fingerprint: string;
  promoted: boolean;
  /** Its role now; null when the policy does not use it yet. */
  role: 'current' | 'pending' | null;
  /** When it signs from (Unix seconds), when the store's times say. */
  signsFrom: number | null;
  /** The versions disabled as retired. */
  disabled: string[];
  /** The lines `keyroll rotate` prints. */
  steps: string[];
}

/** A live key ring, from `open`. */
export class KeyRing extends EventEmitter {
  private constructor();
  /**
   * One array for the life of the ring, updated in place: the signing key
   * first, then every key that only verifies; empty while nothing is served
   * and once closed. Give it to express-session or cookie-parser as is.
   */
  readonly secrets: Secret[];
  /** The key set's generation when `secrets` was last brought up to date. */
  readonly generation: number;
  /** Why nothing is served, while so; else null. */
  readonly refused: string | null;
  readonly closed: boolean;
  status(): RingStatus;
  refreshNow(): void;
  /** Publishes a new key in this ring's store, with the options the ring was opened with. */
  rotate(args?: RotateArgs): Promise<Rotated>;
  /** The key a JWT header's `kid` names, if it verifies now (the signing key without `kid`). */
  jwtKey(header: { kid?: string }): Buffer;
  /** The signing key and its id, for libraries that sign JWTs. */
  jwtSigningKey(): { kid: string; key: Buffer };
  djangoSigner(options?: {
    salt?: string;
    timestamp?: boolean;
    sep?: string;
    algorithm?: 'sha1' | 'sha256' | 'sha512';
  }): DjangoSigner;
  nativeSigner(options?: { salt?: string; timestamp?: boolean; maxAge?: number }): NativeSigner;
  fernet(options?: { derive?: 'raw' | 'hkdf' }): Fernet;
  jwt(options?: { issuer?: string; audience?: string; leeway?: number }): JwtSigner;
  /** Stops following the store; `secrets` empties. Idempotent. */
  close(): void;
  on(event: 'change', listener: (change: Change) => void): this;
  on(event: 'close', listener: () => void): this;
  once(event: 'change', listener: (change: Change) => void): this;
  once(event: 'close', listener: () => void): this;
}

/** Opens the key source `uri`; resolves once a first good key set is in. */
export function open(uri: string, options?: OpenOptions): Promise<KeyRing>;

/** Publishes a new key in the store `uri` names, as `keyroll rotate` does; `open`'s options decide when it signs. */
export function rotate(uri: string, options?: OpenOptions & RotateArgs): Promise<Rotated>;

export class KeyrollError extends Error {
  readonly kind: 'config' | 'keys' | 'unavailable' | 'closed' | 'token';
}
/** The ring serves no key: revoked, expired, or not confirmed within failClosedAfter. */
export class FailedClosed extends KeyrollError {}
export class BadSignature extends KeyrollError {}
export class SignatureExpired extends BadSignature {}
export class InvalidToken extends KeyrollError {}

export const express: typeof import('./express');
