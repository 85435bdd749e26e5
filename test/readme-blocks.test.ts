// Every copy-paste block the README marks (`<!-- KIND: NAME -->`) is run from the README by
// something: a test file that takes it by kind and name (readmeBlock / readmeBlocks), or, for
// the set-up blocks, .ci/run. A block added without a runner fails here.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/agent.js';

const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
const markers = [...readme.matchAll(/<!-- (\w+): ([\w-]+) -->\n```/g)].map((m) => ({ kind: m[1]!, name: m[2]! }));
const testSources = readdirSync(path.join(REPO, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => ({ file: f, text: readFileSync(path.join(REPO, 'test', f), 'utf8') }));
const ciRun = readFileSync(path.join(REPO, '.ci', 'run'), 'utf8');

function runners(kind: string, name: string): string[] {
  if (kind === 'setup') return new RegExp(`readme_block ${name}\\b`).test(ciRun) ? ['.ci/run'] : [];
  return testSources.filter((t) => t.text.includes(`'${kind}'`) && t.text.includes(`'${name}'`)).map((t) => t.file);
}

describe('the README blocks', () => {
  it('are marked, the set-up, build, service, CI, container, Kubernetes and friend blocks among them', () => {
    expect(new Set(markers.map((m) => m.kind))).toEqual(new Set(['setup', 'quickstart', 'service', 'ci', 'container', 'kubernetes', 'friend']));
  });

  for (const { kind, name } of markers) {
    it(`${kind}: ${name} is run from the README`, () => {
      expect(runners(kind, name), `nothing runs the README block ${kind}: ${name}`).not.toEqual([]);
    });
  }
});
