// The result cache's keys. A result key names everything that decides a compile's output
// bytes: the toolchain, the job's argv (as the compiler runs it, colour flag included), the
// working directory, the environment the compiler sees, and the input tree (every file with
// its hash and mode, every search-directory listing, every directory the compile steps
// through). A manifest key names what direct mode knows before any scan: the same without
// the input tree, plus the source.
//
// Why the working directory always: gcc writes it into the debug info with -g, and __FILE__,
// -fdebug-prefix-map, -fprofile-* and .d rules can reach it in ways no table of options can
// be proven complete for; and since inputs are keyed by absolute path, two checkouts at
// different places miss anyway, so keying the cwd costs no hit a correct key could have had.
// Why the environment whole (but MESHCC_*): the agent gets only the variables the compiler
// reads (the native client's list: locale, include paths, SOURCE_DATE_EPOCH, GCC_* …); each
// can change diagnostics or bytes; MESHCC_* are meshcc's own and never reach a compiler.
import { createHash, type Hash } from 'node:crypto';
import type { DirListing, InputFile } from '../../protocol/messages.js';

export interface CommandIdentity {
  toolchain: string;
  argv: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
}

export interface InputTree {
  inputs: readonly InputFile[];
  listings: readonly DirListing[];
  dirs: readonly string[];
}

/** Bumped whenever what a key covers changes: old entries then simply miss. */
const KEY_VERSION = 'meshcc-cache-1';

function field(h: Hash, tag: string, value: string): void {
  // Length-prefixed, so that no two different field lists hash alike.
  h.update(`${tag}:${Buffer.byteLength(value)}:`);
  h.update(value);
}

/** The environment variables that belong in a key, in a stable order. */
export function keyedEnvironment(env: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(env)
    .filter(([name]) => !name.startsWith('MESHCC_'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function command(h: Hash, kind: string, id: CommandIdentity): void {
  field(h, 'version', `${KEY_VERSION}/${kind}`);
  field(h, 'toolchain', id.toolchain);
  field(h, 'cwd', id.cwd);
  h.update(`argc:${id.argv.length}:`);
  for (const arg of id.argv) field(h, 'arg', arg);
  const env = keyedEnvironment(id.env);
  h.update(`envc:${env.length}:`);
  for (const [name, value] of env) field(h, `env ${name}`, value);
}

const byPath = <T extends { path: string }>(a: T, b: T) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** The key of a compile's result: sha256 hex. */
export function resultKey(id: CommandIdentity, tree: InputTree): string {
  const h = createHash('sha256');
  command(h, 'result', id);
  const inputs = [...tree.inputs].sort(byPath);
  h.update(`inputs:${inputs.length}:`);
  for (const f of inputs) field(h, 'input', `${f.path}\0${f.hash}\0${f.size}\0${f.executable ? 'x' : '-'}`);
  const listings = [...tree.listings].sort(byPath);
  h.update(`listings:${listings.length}:`);
  for (const l of listings) {
    const entries = l.entries.map((e) => `${e.name}${e.dir ? '/' : ''}`).sort();
    field(h, 'listing', `${l.path}\0${entries.join('\0')}`);
  }
  const dirs = [...tree.dirs].sort();
  h.update(`dirs:${dirs.length}:`);
  for (const d of dirs) field(h, 'dir', d);
  return h.digest('hex');
}

/** The key of a direct-mode manifest: the command and its source, no scan. */
export function manifestKey(id: CommandIdentity, source: string): string {
  const h = createHash('sha256');
  command(h, 'manifest', id);
  field(h, 'source', source);
  return h.digest('hex');
}
