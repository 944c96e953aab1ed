#!/usr/bin/env node
// Builds keyroll.node, the package's native half, from this checkout's Rust
// crate: `cargo build --release -p keyroll-node`, then the library copied
// next to index.js. `npm pack` runs it (prepack), so the tarball carries the
// built file and installing that tarball needs no Rust; `npm install` of a
// checkout runs it with --if-missing.
//
//   node build.js [--if-missing]
//
// KEYROLL_NODE_PROFILE picks another cargo profile (`dev` for a quick
// build); CARGO_TARGET_DIR is honoured as cargo honours it.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;
const out = path.join(here, 'keyroll.node');
if (process.argv.includes('--if-missing') && fs.existsSync(out)) {
  process.exit(0);
}
const profile = process.env.KEYROLL_NODE_PROFILE || 'release';
const args = ['build', '--locked', '-p', 'keyroll-node', '--profile', profile];
try {
  execFileSync('cargo', args, { cwd: here, stdio: 'inherit' });
} catch (error) {
  console.error(
    `keyroll: building the native module failed (${error.message}). ` +
      'Building from a checkout needs Rust (https://rustup.rs); a tarball made by `npm pack` does not.',
  );
  process.exit(1);
}
const metadata = JSON.parse(
  execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps', '--locked'], {
    cwd: here,
    maxBuffer: 64 * 1024 * 1024,
  }),
);
const names = { linux: 'libkeyroll_node.so', darwin: 'libkeyroll_node.dylib', win32: 'keyroll_node.dll' };
const name = names[process.platform];
if (!name) {
  console.error(`keyroll: no native build for ${process.platform}`);
  process.exit(1);
}
const directory = profile === 'dev' ? 'debug' : profile;
const built = path.join(metadata.target_directory, directory, name);
// Copy to a temporary name and rename: a process that has the old file
// loaded keeps its mapping.
fs.copyFileSync(built, `${out}.tmp`);
fs.renameSync(`${out}.tmp`, out);
