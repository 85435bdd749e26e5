// The tree a toolchain tarball builds, kept in memory as it is unpacked: what kind each path
// is and where each symlink points. unpack.ts consults it before writing anything, so a
// check never has to look at (or follow) what is already on disk.
import { ToolchainRejected } from './unpack-errors.js';

export type EntryKind = 'directory' | 'file' | 'symlink';

const MAX_NAME_BYTES = 4095;
const MAX_COMPONENT_BYTES = 255;
const MAX_SYMLINK_HOPS = 40;

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * The components of an entry name, or a rejection: no absolute names, no `..`, no empty or `.`
 * components (they would give one path two spellings), nothing the file system would refuse.
 */
export function entryComponents(rawName: string, isDirectory: boolean): string[] {
  // Other tars write directories with a trailing slash; ours too.
  const name = isDirectory && rawName.endsWith('/') ? rawName.slice(0, -1) : rawName;
  if (name.startsWith('/')) throw new ToolchainRejected('absolute-path', `${JSON.stringify(rawName)} is an absolute path`);
  if (name.includes('\0')) throw new ToolchainRejected('bad-name', `${JSON.stringify(rawName)} contains a NUL byte`);
  const parts = name.split('/');
  if (parts.includes('..')) throw new ToolchainRejected('parent-reference', `${JSON.stringify(rawName)} has a .. component`);
  if (parts.some((p) => p === '' || p === '.')) {
    throw new ToolchainRejected('bad-name', `${JSON.stringify(rawName)} has an empty or . component`);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES || parts.some((p) => Buffer.byteLength(p) > MAX_COMPONENT_BYTES)) {
    throw new ToolchainRejected('bad-name', `${JSON.stringify(rawName.slice(0, 80))}… is too long a name`);
  }
  return parts;
}

type Resolution = { outcome: 'inside'; kind: EntryKind | 'missing'; path: string[] } | { outcome: 'escape' } | { outcome: 'loop' };

export class UnpackedTree {
  private readonly kinds = new Map<string, EntryKind>();
  private readonly links = new Map<string, string>();
  private readonly executables = new Set<string>();

  kindOf(name: string): EntryKind | undefined {
    return this.kinds.get(name);
  }

  /**
   * Rejects an entry that already exists, or whose parent is not a directory of this tarball
   * seen before it: never write through a symlink, never into a path the tarball did not make.
   */
  checkPlace(parts: string[]): void {
    const name = parts.join('/');
    if (this.kinds.has(name)) throw new ToolchainRejected('duplicate', `${name} appears twice`);
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      const kind = this.kinds.get(ancestor);
      if (kind === 'symlink') throw new ToolchainRejected('through-link', `${name} would be written through the symlink ${ancestor}`);
      if (kind === 'file') throw new ToolchainRejected('malformed', `${name} is below the file ${ancestor}`);
      if (kind === undefined) throw new ToolchainRejected('missing-parent', `${name} comes before its directory ${ancestor}`);
    }
  }

  /**
   * Rejects a symlink whose target, read as the sandbox will read it (relative to the link's
   * directory; absolute ones from the toolchain root), climbs out of the root by its own `..`.
   * Chains through other links are checked in checkLinks, once every link is known.
   */
  checkLinkTarget(parts: string[], target: string): void {
    const name = parts.join('/');
    if (target === '' || target.includes('\0')) throw new ToolchainRejected('bad-name', `the symlink ${name} has an empty or NUL target`);
    let depth = target.startsWith('/') ? 0 : parts.length - 1;
    for (const part of components(target)) {
      depth += part === '..' ? -1 : 1;
      if (depth < 0) throw new ToolchainRejected('link-escape', `the symlink ${name} → ${target} leaves the toolchain root`);
    }
  }

  add(parts: string[], kind: EntryKind, details: { target?: string; executable?: boolean } = {}): void {
    const name = parts.join('/');
    this.kinds.set(name, kind);
    if (kind === 'symlink') this.links.set(name, details.target!);
    if (kind === 'file' && details.executable) this.executables.add(name);
  }

  /**
   * Resolves a path in the tree as a kernel would with the root as `/`, following its links.
   * Exact once all entries are known: what is missing then stays missing.
   */
  resolve(from: string[], target: string): Resolution {
    let current = target.startsWith('/') ? [] : [...from];
    let pending = components(target);
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '..') {
        if (current.length === 0) return { outcome: 'escape' };
        current.pop();
        continue;
      }
      const next = [...current, part];
      const kind = this.kinds.get(next.join('/'));
      if (kind === undefined) return { outcome: 'inside', kind: 'missing', path: next };
      if (kind === 'symlink') {
        if (++hops > MAX_SYMLINK_HOPS) return { outcome: 'loop' };
        const linkTarget = this.links.get(next.join('/'))!;
        if (linkTarget.startsWith('/')) current = [];
        pending = [...components(linkTarget), ...pending];
        continue;
      }
      current = next;
      if (kind === 'file') return pending.length === 0 ? { outcome: 'inside', kind, path: current } : { outcome: 'inside', kind: 'missing', path: next };
    }
    return { outcome: 'inside', kind: 'directory', path: current };
  }

  /**
   * Rejects a link that leaves the root through other links (a → b/../.. where b points one
   * level down is fine by its own text, not by the kernel's reading), and link loops.
   */
  checkLinks(): void {
    for (const [name, target] of this.links) {
      const resolution = this.resolve(name.split('/').slice(0, -1), target);
      if (resolution.outcome === 'escape') throw new ToolchainRejected('link-escape', `the symlink ${name} → ${target} leads out of the toolchain root`);
      if (resolution.outcome === 'loop') throw new ToolchainRejected('link-escape', `the symlink ${name} → ${target} loops`);
    }
  }

  /** Whether this absolute path leads to an executable regular file of the tree. */
  isExecutable(absolutePath: string): boolean {
    const resolution = this.resolve([], absolutePath);
    return resolution.outcome === 'inside' && resolution.kind === 'file' && this.executables.has(resolution.path.join('/'));
  }
}
