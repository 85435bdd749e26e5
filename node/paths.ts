// Where the installed package keeps what it built: the native client and the masquerade directory.
import { existsSync } from 'node:fs';
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
export const NATIVE_CLIENT = path.join(PACKAGE_ROOT, 'dist', 'client', 'meshcc-cc');
export const MASQUERADE_DIR = path.join(PACKAGE_ROOT, 'dist', 'masquerade');
export const CLIENT_BUILD_SCRIPT = path.join(PACKAGE_ROOT, 'scripts', 'build-client.js');
