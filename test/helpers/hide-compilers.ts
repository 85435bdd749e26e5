// A process that sees no C/C++ compiler of this host: a command line that runs a command in a
// mount namespace of its own where gcc's and clang's directories are empty tmpfs mounts and
// every compiler driver, assembler and linker in /usr/bin is an empty, non-executable file.
// (The dynamic loader and shared libraries stay: the command itself needs them.)
import { readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

const HIDDEN_DIRS_GLOB = /^llvm-\d+$/;
const DRIVER = /gcc|g\+\+|clang|^cc$|^c\+\+$|^c89|^c99|^cpp|^as$|-as$|^ld$|^ld\.(bfd|gold)$|-ld(\.|$)/;

export interface HiddenCompilers {
  /** directories replaced by empty tmpfs mounts */
  dirs: string[];
  /** real files (driver binaries outside those directories) replaced by an empty file */
  files: string[];
  /** argv prefix: `[...prefix, cmd, ...args]` runs cmd with the compilers hidden */
  prefix: string[];
}

export function hideCompilers(): HiddenCompilers {
  const dirs = ['/usr/lib/gcc', '/usr/libexec', '/usr/lib/gcc-cross'].filter(isDir);
  for (const name of readdirSync('/usr/lib')) if (HIDDEN_DIRS_GLOB.test(name)) dirs.push(path.join('/usr/lib', name));
  const files = new Set<string>();
  for (const name of readdirSync('/usr/bin')) {
    if (!DRIVER.test(name)) continue;
    let real: string;
    try {
      real = realpathSync(path.join('/usr/bin', name));
    } catch {
      continue;
    }
    if (!dirs.some((d) => real.startsWith(`${d}/`)) && statSync(real).isFile()) files.add(real);
  }
  const quoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = [
    'set -e',
    ...dirs.map((d) => `mount -t tmpfs -o size=64k,mode=755 meshcc-hidden ${quoted(d)}`),
    'empty=$(mktemp /tmp/meshcc-hidden-XXXXXX)',
    'chmod 644 "$empty"',
    ...[...files].map((f) => `mount --bind "$empty" ${quoted(f)}`),
    'rm -f "$empty"',
    'exec "$@"',
  ].join('\n');
  return { dirs, files: [...files], prefix: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'hide-compilers'] };
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
