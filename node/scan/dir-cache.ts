// Directory entries, cached by the directory's mtime and checked at most once per scan (an
// epoch): a build creates generated headers as it goes, and a scan must see them, but one
// scan asks about the same directory hundreds of times.
//
// The names asked about are remembered per directory. When a directory is read again and one
// of those names appeared, vanished or changed kind, its version goes up: whatever was
// resolved from its answers before (the walk keeps each file's resolved includes, with the
// versions of the directories they asked) must be resolved again. Names nobody asked about (a
// build's new objects beside its sources) change nothing.
//
// A large directory that keeps changing (a build directory filling with objects beside the
// sources) is not read again whole when few names were asked in it: once it changed, its
// entries are the asked names alone, each looked up by itself (a name asked for the first time
// is looked up then). A generated project's thousands of units would otherwise be listed again
// for every unit; git's top directory, where hundreds of names are asked, is still listed.
import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { DirListing } from '../../protocol/messages.js';
import { settled } from '../file-stamp.js';

export type EntryKind = 'file' | 'dir';

interface CachedDir {
  /** -1: not a directory */
  mtimeMs: number;
  /** ctime too: a tool that puts an old mtime back (tar, rsync -t) cannot put back the ctime */
  ctimeMs: number;
  checkedEpoch: number;
  /** undefined: not a readable directory; a name mapped to undefined: looked up, absent */
  entries?: Map<string, EntryKind | undefined>;
  /** entries holds the names looked up one by one, not the directory's whole listing */
  probed?: boolean;
  /** entries in the directory's last whole listing */
  listedSize: number;
  listing?: DirListing;
}

const MAX_LISTING_ENTRIES = 20_000;
/** A changed directory is probed name by name instead of listed again when it holds more than
 *  this many entries... */
const PROBE_MIN_ENTRIES = 256;
/** ...and more than this many per name asked in it: a lookup (`lstat`) costs about as much as
 *  this many entries of a listing. */
const ENTRIES_PER_LOOKUP = 16;

export class DirCache {
  private readonly dirs = new Map<string, CachedDir>();
  /** kindOfPath's answers in this epoch */
  private readonly paths = new Map<string, EntryKind | undefined>();
  /** Files stat'ed in this epoch: the scan's, handed on to the hasher (one stat per file per job). */
  private readonly files = new Map<string, Stats | undefined>();
  private epoch = 0;
  /** Names looked up in each directory (kind, kindIn, kindOfPath). */
  private readonly asked = new Map<string, Set<string>>();
  /** Per directory, how many times an asked name changed. */
  private readonly versions = new Map<string, number>();
  /** Whole listings read so far. */
  listingsRead = 0;
  /** Directories looked up in while track() runs. */
  private tracking?: Set<string>;

  /** Starts a scan: every directory is checked again (once) from now on. */
  nextEpoch(): void {
    this.epoch++;
    this.paths.clear();
    this.files.clear();
  }

  /** A file's stats (following links) as of this epoch, or undefined when there is none. */
  statFile(file: string): Stats | undefined {
    if (this.files.has(file)) return this.files.get(file);
    const st = statSync(file, { throwIfNoEntry: false });
    this.files.set(file, st);
    return st;
  }

  /** The stats taken in this epoch, by path. */
  filesStated(): Map<string, Stats | undefined> {
    return new Map(this.files);
  }

  /** The directory's version, checked once this epoch: answers it gave under another one may no longer hold. */
  version(dir: string): number {
    this.read(dir);
    return this.versions.get(dir) ?? 0;
  }

  /** Runs `work` and returns the directories it looked up in. */
  track(work: () => void): Set<string> {
    const outer = this.tracking;
    const dirs = new Set<string>();
    this.tracking = dirs;
    try {
      work();
    } finally {
      this.tracking = outer;
      if (outer) for (const d of dirs) outer.add(d);
    }
    return dirs;
  }

  /** The kind of `dir/name` for a single path component, or undefined when there is none. */
  kind(dir: string, name: string): EntryKind | undefined {
    let names = this.asked.get(dir);
    if (!names) this.asked.set(dir, (names = new Set()));
    names.add(name);
    this.tracking?.add(dir);
    const cached = this.read(dir);
    if (!cached.probed || cached.entries!.has(name)) return cached.entries?.get(name);
    const kind = lookUp(dir, name);
    cached.entries!.set(name, kind);
    return kind;
  }

  /**
   * The kind of `dir/name`, where name may have several components (`sys/types.h`): one
   * lookup per component, without building the path string unless the name has `..`.
   */
  kindIn(dir: string, name: string): EntryKind | undefined {
    if (!name.includes('/')) return this.kind(dir, name);
    const parts = name.split('/');
    let at = dir;
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i]!;
      if (part === '' || part === '.') continue;
      if (part === '..') return this.kindOfPath(path.resolve(dir, name));
      if (this.kind(at, part) !== 'dir') return undefined;
      at = at === '/' ? `/${part}` : `${at}/${part}`;
    }
    return this.kind(at, parts[parts.length - 1]!);
  }

  /** The kind of an absolute, normalised path, walking cached listings from `/`. */
  kindOfPath(absolute: string): EntryKind | undefined {
    if (absolute === '/') return 'dir';
    if (this.paths.has(absolute)) {
      // Answered from this epoch's memo: whoever tracks still depends on the directories above.
      if (this.tracking) for (let at = absolute; at !== '/'; ) this.tracking.add((at = at.slice(0, at.lastIndexOf('/')) || '/'));
      return this.paths.get(absolute);
    }
    const slash = absolute.lastIndexOf('/');
    const parent = slash === 0 ? '/' : absolute.slice(0, slash);
    const kind = this.kindOfPath(parent) === 'dir' ? this.kind(parent, absolute.slice(slash + 1)) : undefined;
    this.paths.set(absolute, kind);
    return kind;
  }

  /** The listing a job root recreates, or undefined for a missing or oversized directory. */
  listing(dir: string): DirListing | undefined {
    const cached = this.read(dir);
    if (cached.probed) {
      cached.entries = this.readEntries(dir);
      cached.listedSize = cached.entries?.size ?? 0;
      cached.probed = false;
    }
    if (!cached.entries || cached.entries.size > MAX_LISTING_ENTRIES) return undefined;
    cached.listing ??= { path: dir, entries: [...cached.entries].map(([name, kind]) => ({ name, dir: kind === 'dir' })) };
    return cached.listing;
  }

  private read(dir: string): CachedDir {
    const cached = this.dirs.get(dir);
    if (cached && cached.checkedEpoch === this.epoch) return cached;
    let mtimeMs = -1;
    let ctimeMs = -1;
    // A directory changed this recently may change again within the same timestamp tick.
    let trusted = false;
    try {
      const st = statSync(dir);
      if (st.isDirectory()) ({ mtimeMs, ctimeMs } = st);
      trusted = settled(st);
    } catch {
      // gone or unreadable: no entries
    }
    if (mtimeMs >= 0 && cached?.entries && cached.mtimeMs === mtimeMs && cached.ctimeMs === ctimeMs && trusted) {
      cached.checkedEpoch = this.epoch;
      return cached;
    }
    const fresh: CachedDir = { mtimeMs, ctimeMs, checkedEpoch: this.epoch, listedSize: 0 };
    const asked = this.asked.get(dir);
    if (mtimeMs >= 0 && cached?.entries && asked && probeable(cached.listedSize, asked)) {
      fresh.probed = true;
      fresh.listedSize = cached.listedSize;
      fresh.entries = new Map([...asked].map((name) => [name, lookUp(dir, name)]));
    } else if (mtimeMs >= 0) {
      fresh.entries = this.readEntries(dir);
      fresh.listedSize = fresh.entries?.size ?? 0;
    }
    if (cached) this.noteChanges(dir, cached.entries, fresh.entries);
    this.dirs.set(dir, fresh);
    return fresh;
  }

  private readEntries(dir: string): Map<string, EntryKind | undefined> | undefined {
    this.listingsRead++;
    return readEntries(dir);
  }

  private noteChanges(dir: string, before: Map<string, EntryKind | undefined> | undefined, after: Map<string, EntryKind | undefined> | undefined): void {
    const names = this.asked.get(dir);
    if (!names || before === after) return;
    for (const name of names) {
      if (before?.get(name) !== after?.get(name)) {
        this.versions.set(dir, (this.versions.get(dir) ?? 0) + 1);
        return;
      }
    }
  }
}

/** Whether a name can be an entry of a listing (not empty, `.`, `..`, nor a path). */
function isEntryName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/');
}

/** Whether a changed directory of `entries` entries is cheaper to probe for the `asked` names
 *  than to list. */
function probeable(entries: number, asked: Set<string>): boolean {
  if (entries <= PROBE_MIN_ENTRIES || asked.size * ENTRIES_PER_LOOKUP >= entries) return false;
  for (const name of asked) if (!isEntryName(name)) return false;
  return true;
}

/** The kind a listing would give `dir/name`. */
function lookUp(dir: string, name: string): EntryKind | undefined {
  if (!isEntryName(name)) return undefined;
  const file = dir === '/' ? `/${name}` : `${dir}/${name}`;
  let st: Stats | undefined;
  try {
    st = lstatSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  if (!st) return undefined;
  if (st.isDirectory()) return 'dir';
  return st.isSymbolicLink() ? linkKind(file) : 'file';
}

/** The compiler follows links; a dangling one it cannot open is no entry to it, but a listing
 *  still shows the name (as the host's readdir does). */
function linkKind(file: string): EntryKind {
  try {
    return statSync(file).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'file';
  }
}

function readEntries(dir: string): Map<string, EntryKind | undefined> | undefined {
  let dirents;
  try {
    dirents = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  const entries = new Map<string, EntryKind | undefined>();
  for (const d of dirents) {
    if (d.isDirectory()) entries.set(d.name, 'dir');
    else entries.set(d.name, d.isSymbolicLink() ? linkKind(path.join(dir, d.name)) : 'file');
  }
  return entries;
}
