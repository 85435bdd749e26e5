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
import { createHash } from 'node:crypto';
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

/** Bumped whenever what a key covers (or how it is encoded) changes: old entries then simply miss. */
const KEY_VERSION = 'meshcc-cache-2';

/** The environment variables that belong in a key, in a stable order. */
export function keyedEnvironment(env: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(env)
    .filter(([name]) => !name.startsWith('MESHCC_'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

// Each key is the sha256 of one JSON text: JSON's quoting makes every field list encode
// differently (no two compiles share bytes), and one native stringify and one hash update
// cost a tenth of a hash update per field (2 ms a git unit in a profile, before).
function command(kind: string, id: CommandIdentity): unknown[] {
  return [`${KEY_VERSION}/${kind}`, id.toolchain, id.cwd, id.argv, keyedEnvironment(id.env)];
}

const byPath = <T extends { path: string }>(a: T, b: T) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** In path order: scans give their files nearly sorted already, so a check usually spares the sort. */
function sortedByPath<T extends { path: string }>(items: readonly T[]): readonly T[] {
  for (let i = 1; i < items.length; i++) if (items[i - 1]!.path > items[i]!.path) return [...items].sort(byPath);
  return items;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The key of a compile's result: sha256 hex. */
export function resultKey(id: CommandIdentity, tree: InputTree): string {
  const inputs = sortedByPath(tree.inputs).map((f) => [f.path, f.hash, f.size, f.executable ? 1 : 0]);
  const listings = sortedByPath(tree.listings).map((l) => [l.path, l.entries.map((e) => `${e.name}${e.dir ? '/' : ''}`).sort()]);
  return sha256Hex(JSON.stringify([...command('result', id), inputs, listings, [...tree.dirs].sort()]));
}

/** The key of a direct-mode manifest: the command and its source, no scan. */
export function manifestKey(id: CommandIdentity, source: string): string {
  return sha256Hex(JSON.stringify([...command('manifest', id), source]));
}
