'use strict';
// Express helpers: a readiness handler answering from the ring's status.

/**
 * A request handler answering 200 while the ring's keys are healthy and 503
 * otherwise (degraded, failed closed, stopped, or the ring closed), with a
 * JSON body that names no key material: for a load balancer's readiness
 * probe. Works with Express and with plain `node:http`.
 */
function ready(ring) {
  return function keyrollReady(req, res) {
    let body;
    try {
      const status = ring.status();
      body = {
        status: status.health,
        generation: status.generation,
        source: status.source,
        stalenessSeconds: status.stalenessSeconds,
        lastError: status.lastError ?? null,
      };
    } catch (error) {
      body = { status: 'closed', lastError: error.message };
    }
    res.statusCode = body.status === 'healthy' ? 200 : 503;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    res.end(JSON.stringify(body));
  };
}

module.exports = { ready };
