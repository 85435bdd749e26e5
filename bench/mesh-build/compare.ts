// Whether a distributed build produced what the plain build did. meshcc must produce the same
// bytes; distcc and icecream compile preprocessed text, so with -g an object of theirs may
// differ, and the question becomes where: stripping the debug information from both objects
// and comparing again tells a difference in debug records apart from different code, and, for
// the first differing object, the sections and the DWARF attributes that differ say which
// records (e.g. columns counted in the preprocessed text, or the compiler's flags).
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
  /** Where the first differing object (one in both trees) differs. */
  first?: ObjectDifference;
}

export interface ObjectDifference {
  /** Relative path in both trees. */
  object: string;
  /** Sections whose contents differ. */
  sections: string[];
  /** DWARF attributes on the lines of `readelf --debug-dump=info` that differ, with counts. */
  attributes: Map<string, number>;
  /** DW_AT_producer (the compiler and its flags) in both builds, where they differ. */
  producers?: { plain: string; other: string };
}

const readelf = (args: string[]) => execFileSync('readelf', args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] });

/** `readelf --debug-dump=info` without the offsets that shift whenever anything before them changes. */
function debugInfoLines(object: string): string[] {
  try {
    return readelf(['--debug-dump=info', object])
      .split('\n')
      .map((l) => l.replace(/^\s*<[0-9a-f]+>(<[0-9a-f]+>)?/, '').replace(/\((indirect (line )?string|alt indirect string), offset: 0x[0-9a-f]+\)/, '').trim());
  } catch {
    return [];
  }
}

function sectionNames(object: string): string[] {
  try {
    return [...readelf(['-SW', object]).matchAll(/^\s*\[\s*\d+\]\s+(\S+)/gm)].map((m) => m[1]!).filter((n) => n !== 'NULL');
  } catch {
    return [];
  }
}

function whereObjectsDiffer(object: string, plainTree: string, otherTree: string, scratch: string): ObjectDifference {
  const [plainObject, otherObject] = [path.join(plainTree, object), path.join(otherTree, object)];
  const sections: string[] = [];
  for (const name of sectionNames(plainObject)) {
    const dumped = ['plain', 'other'].map((side) => path.join(scratch, `${side}.section`));
    try {
      // objcopy writes an output object as well: to scratch, never over the build's object.
      execFileSync('objcopy', ['--dump-section', `${name}=${dumped[0]}`, plainObject, path.join(scratch, 'plain.out')], { stdio: 'ignore' });
      execFileSync('objcopy', ['--dump-section', `${name}=${dumped[1]}`, otherObject, path.join(scratch, 'other.out')], { stdio: 'ignore' });
    } catch {
      continue; // a section without contents (.bss, NOBITS)
    }
    if (!readFileSync(dumped[0]!).equals(readFileSync(dumped[1]!))) sections.push(name);
  }
  const attributes = new Map<string, number>();
  const [plainInfo, otherInfo] = [debugInfoLines(plainObject), debugInfoLines(otherObject)];
  if (plainInfo.length === otherInfo.length) {
    plainInfo.forEach((line, i) => {
      if (line === otherInfo[i]) return;
      const attribute = line.match(/DW_AT_\w+/)?.[0] ?? 'other lines';
      attributes.set(attribute, (attributes.get(attribute) ?? 0) + 1);
    });
  } else {
    attributes.set(`different structure (${plainInfo.length} vs ${otherInfo.length} lines)`, 1);
  }
  const producer = (lines: string[]) => lines.find((l) => l.startsWith('DW_AT_producer'))?.replace(/^DW_AT_producer\s*:\s*(:\s*)?/, '') ?? '';
  const [plain, other] = [producer(plainInfo), producer(otherInfo)];
  return { object, sections, attributes, producers: plain !== other ? { plain, other } : undefined };
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
    if (first) result.first = whereObjectsDiffer(first, plainTree, otherTree, scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return result;
}
