// The README's copy-paste blocks, taken from README.md itself so that a test runs what a
// person reads: every fenced block (```sh, ```dockerfile, …) right after a `<!-- KIND: NAME -->` marker.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './agent.js';

/** The blocks marked `<!-- kind: NAME -->`, by NAME. */
export function readmeBlocks(kind: string): Map<string, string> {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const m of readme.matchAll(new RegExp(`<!-- ${kind}: ([\\w-]+) -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``, 'g'))) blocks.set(m[1]!, m[2]!);
  return blocks;
}

/** One marked block; a missing one fails the test that needs it. */
export function readmeBlock(kind: string, name: string): string {
  const block = readmeBlocks(kind).get(name);
  if (block === undefined) throw new Error(`README.md has no block marked ${kind}: ${name}`);
  return block;
}
