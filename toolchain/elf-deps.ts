// The shared libraries and the dynamic loader that ELF programs of a toolchain load.
//
// We ask `ldd` rather than parsing DT_NEEDED / PT_INTERP ourselves. ldd has the real dynamic
// loader trace the load (LD_TRACE_LOADED_OBJECTS), so the answer is the one the compiler gets
// at run time: ld.so.cache and ld.so.conf, RUNPATH/RPATH with $ORIGIN, hwcaps and multiarch
// directories, LD_LIBRARY_PATH, transitive dependencies. A hand-written resolver has to
// re-implement all of that and is wrong exactly on the unusual setups where it matters. The
// price is that ldd may execute the file's loader (with non-glibc loaders, the file itself);
// that is acceptable here because we only ask about the host compiler's own programs, which
// identify has already run. One ldd spawn covers all the programs: it lists every transitive
// dependency of each file named.
import { runProgram } from './run.js';

export interface SharedObject {
  role: 'lib' | 'loader';
  /** the path the loader opens (for 'lib' its basename is the DT_NEEDED name) */
  path: string;
}

export interface SharedObjects {
  objects: SharedObject[];
  /** DT_NEEDED names the loader could not find */
  missing: string[];
}

const FOUND = /^\s+(\S+) => (\/.*?) \(0x[0-9a-f]+\)$/;
const NOT_FOUND = /^\s+(\S+) => not found$/;
// The interpreter (and with musl, the loader that is also libc) appears by absolute path alone.
const BY_PATH = /^\s+(\/.*?) \(0x[0-9a-f]+\)$/;

export function parseLdd(output: string): SharedObjects {
  const objects = new Map<string, SharedObject>();
  const missing = new Set<string>();
  for (const line of output.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = FOUND.exec(line))) {
      if (!objects.has(m[2]!)) objects.set(m[2]!, { role: 'lib', path: m[2]! });
    } else if ((m = NOT_FOUND.exec(line))) {
      missing.add(m[1]!);
    } else if ((m = BY_PATH.exec(line))) {
      objects.set(m[1]!, { role: 'loader', path: m[1]! });
    }
    // anything else: headers ("file:"), linux-vdso.so.1 (in the kernel), "statically linked"
  }
  return { objects: [...objects.values()], missing: [...missing] };
}

/** The libraries and loader of these ELF files (absolute paths), transitively. */
export async function sharedObjects(elfFiles: readonly string[]): Promise<SharedObjects> {
  if (elfFiles.length === 0) return { objects: [], missing: [] };
  let result;
  try {
    result = await runProgram('ldd', ['--', ...elfFiles]);
  } catch (err) {
    throw new Error(`cannot list shared libraries with ldd: ${(err as Error).message}`);
  }
  // ldd exits 1 when one of the files is static ("not a dynamic executable"); what it listed
  // for the others stands.
  return parseLdd(result.stdout);
}
