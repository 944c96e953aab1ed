'use strict';
// The package's types (index.d.ts, express.d.ts) as a TypeScript user's
// checker reads them: typed.ts uses every part of the API, `tsc --strict`
// must accept it.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { test } = require('node:test');

test('tsc --strict accepts a typed Express site using the whole API', () => {
  const tsc = path.join(__dirname, 'node_modules', 'typescript', 'bin', 'tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
