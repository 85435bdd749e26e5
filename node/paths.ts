// Where the installed package is, and what it holds besides compiled JavaScript.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the meshcc package root');
    dir = parent;
  }
  return dir;
}

export const PACKAGE_ROOT = packageRoot();
export const PACKAGE_VERSION = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Builds the native client (see node/native-client.ts for where it is used from). */
export const CLIENT_BUILD_SCRIPT = path.join(PACKAGE_ROOT, 'scripts', 'build-client.js');
/** Everything the native client and spawner are built from: a change to any of them calls for a new build. */
export const CLIENT_BUILD_INPUTS = [
  CLIENT_BUILD_SCRIPT,
  ...['meshcc-client.c', 'msgpack.c', 'msgpack.h', 'copy-outputs.c', 'copy-outputs.h'].map((f) => path.join(PACKAGE_ROOT, 'node', 'client', f)),
  ...['meshcc-spawn.c', 'exec-program.c', 'exec-program.h', 'sandbox-state.c', 'sandbox-state.h'].map((f) => path.join(PACKAGE_ROOT, 'node', 'spawner', f)),
];
