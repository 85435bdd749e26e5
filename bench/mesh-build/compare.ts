// Whether a distributed build produced what the plain build did. meshcc must produce the same
// bytes; distcc and icecream compile preprocessed text, so with -g an object of theirs may
// differ, and the question becomes where: stripping the debug information from both objects
// and comparing again, and reading the compiler's producer string, tell a difference in
// debug records apart from different code.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { filesUnder } from './common.js';

export interface TreeComparison {
  identical: number;
  /** Relative paths, with a note where the file is on one side only. */
  differing: string[];
}

export function compareTrees(plainTree: string, otherTree: string, exts: string[], otherLabel: string): TreeComparison {
  const a = filesUnder(plainTree, exts);
  const b = new Set(filesUnder(otherTree, exts));
  const differing: string[] = [];
  let identical = 0;
  for (const rel of a) {
    if (!b.has(rel)) {
      differing.push(`${rel} (missing from the ${otherLabel} build)`);
      continue;
    }
    b.delete(rel);
    if (readFileSync(path.join(plainTree, rel)).equals(readFileSync(path.join(otherTree, rel)))) identical++;
    else differing.push(rel);
  }
  for (const rel of b) differing.push(`${rel} (only in the ${otherLabel} build)`);
  return { identical, differing };
}

export interface DebugOnlyCheck {
  /** Differing objects (present in both trees) that were compared stripped. */
  checked: number;
  /** Of those, identical once `objcopy --strip-debug` has removed the debug sections of both. */
  identicalStripped: number;
  /** DW_AT_producer of the first differing object, in both builds, where they differ. */
  producers?: { object: string; plain: string; other: string };
}

function producerOf(object: string): string {
  try {
    const info = execFileSync('readelf', ['--debug-dump=info', object], { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
    return info.match(/DW_AT_producer\s*:.*?:\s*(.*)/)?.[1]?.trim() ?? '';
  } catch {
    return '';
  }
}

/** For objects that differ: are they the same once their debug sections are gone? */
export function debugOnlyDifferences(plainTree: string, otherTree: string, differing: string[]): DebugOnlyCheck {
  const both = differing.filter((rel) => !rel.includes(' ('));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-strip-'));
  const result: DebugOnlyCheck = { checked: 0, identicalStripped: 0 };
  try {
    for (const rel of both) {
      const stripped = ['plain', 'other'].map((side) => path.join(scratch, `${side}.o`));
      try {
        execFileSync('objcopy', ['--strip-debug', path.join(plainTree, rel), stripped[0]!], { stdio: 'ignore' });
        execFileSync('objcopy', ['--strip-debug', path.join(otherTree, rel), stripped[1]!], { stdio: 'ignore' });
      } catch {
        continue; // not an object objcopy knows
      }
      result.checked++;
      if (readFileSync(stripped[0]!).equals(readFileSync(stripped[1]!))) result.identicalStripped++;
    }
    const first = both[0];
    if (first) {
      const plain = producerOf(path.join(plainTree, first));
      const other = producerOf(path.join(otherTree, first));
      if (plain !== other) result.producers = { object: first, plain, other };
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return result;
}
