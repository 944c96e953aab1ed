import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeyRing } from './index';

/** A readiness handler: 200 while the ring's keys are healthy, 503 otherwise, JSON without key material. */
export function ready(ring: KeyRing): (req: IncomingMessage, res: ServerResponse) => void;
