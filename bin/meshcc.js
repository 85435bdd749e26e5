#!/usr/bin/env node
// The `meshcc` command: the compiled CLI in dist/. A clone has none until it is built, and a
// stack trace would not say so: say in one line what to run instead.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'node', 'cli.js');
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(`meshcc: needs Node 20 or later, this is Node ${process.versions.node}\n`);
  process.exit(1);
}
if (!existsSync(cli)) {
  const install = existsSync(path.join(root, 'node_modules')) ? 'npm run build' : 'npm ci && npm run build';
  process.stderr.write(`meshcc: not built yet: run '${install}' in ${root} (it compiles dist/ and the compiler client)\n`);
  process.exit(1);
}
await import(pathToFileURL(cli).href);
