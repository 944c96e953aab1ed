'use strict';
// The benchmark runs and reports every case (not a timed assertion: the
// figures are scripts/bench's business, with the release build).

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { test } = require('node:test');

test('bench.js --quick reports both verify cases and the Express request', () => {
  const run = spawnSync(process.execPath, [path.join(__dirname, '..', 'bench', 'bench.js'), '--quick', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: path.join(__dirname, 'node_modules') },
    timeout: 120000,
  });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.deepEqual(
    result.verify.map((row) => row.case),
    ['Django-format verify', 'native verify'],
  );
  for (const row of result.verify) assert.ok(row.keyroll_ns > 0 && row.node_ns > 0, JSON.stringify(row));
  const express = result.express_request;
  assert.ok(express.keyroll_rps > 0 && express.static_rps > 0 && express.rounds === 2, JSON.stringify(express));
  assert.equal(result.express, '5.3.0');
});
