// What a job sees of its compiler when the toolchain was shipped: the files of the toolchain's
// unpacked tree bound read-only at their original paths and its symlinks recreated, and
// nothing else of the host. Read once per installed toolchain (the tree never changes while
// leased; a touched tree is verified again by the cache before a lease is given).
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';

export interface ToolchainMounts {
  /** The unpacked tree (as toolchain/unpack.ts leaves it). */
  root: string;
  /** Absolute paths inside the sandbox of the toolchain's regular files. */
  files: string[];
  /** Symlinks inside the sandbox, shallowest first (`/lib → usr/lib` before anything under it). */
  links: { path: string; target: string }[];
}

/** Metadata of the tarball, not part of what a compile runs. */
const NOT_MOUNTED = new Set(['.meshcc']);

export function readToolchainMounts(root: string): ToolchainMounts {
  const mounts: ToolchainMounts = { root, files: [], links: [] };
  const walk = (relative: string) => {
    for (const name of readdirSync(path.join(root, relative)).sort()) {
      if (!relative && NOT_MOUNTED.has(name)) continue;
      const rel = relative ? `${relative}/${name}` : name;
      const st = lstatSync(path.join(root, rel));
      if (st.isDirectory()) walk(rel);
      else if (st.isSymbolicLink()) mounts.links.push({ path: `/${rel}`, target: readlinkSync(path.join(root, rel)) });
      else if (st.isFile()) mounts.files.push(`/${rel}`);
    }
  };
  walk('');
  mounts.links.sort((a, b) => a.path.split('/').length - b.path.split('/').length || (a.path < b.path ? -1 : 1));
  return mounts;
}

/** bubblewrap arguments that lay the toolchain over a job root. A link whose path the job
 *  root already holds as a directory (inputs under it) is left to the job root. */
export function toolchainMountArgs(mounts: ToolchainMounts, jobRootHas: (p: string) => boolean): string[] {
  const args: string[] = [];
  for (const link of mounts.links) if (!jobRootHas(link.path)) args.push('--symlink', link.target, link.path);
  for (const file of mounts.files) args.push('--ro-bind', path.join(mounts.root, file), file);
  return args;
}
