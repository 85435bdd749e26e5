// The README and docs/ point only inside the repository (a reader of a clone or of the package
// can follow every link), and the repository names no package host: the project fetchers take
// the machine's own apt sources (test/projects/deb-src.sh).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/agent.js';

const pages = ['README.md', ...readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];

/** Every markdown link target of a page: [text](target) and ![alt](target). */
function linkTargets(page: string): string[] {
  const text = readFileSync(path.join(REPO, page), 'utf8');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

describe('the README and docs/', () => {
  it('have the design pages the README sends the reader to', () => {
    expect(linkTargets('README.md')).toContain('docs/design.md');
    for (const page of ['design', 'job-route', 'mesh', 'toolchains', 'measurements', 'next']) expect(pages).toContain(`docs/${page}.md`);
  });

  it.each(pages)('%s links only to files inside the repository that exist', (page) => {
    const outside: string[] = [];
    for (const target of linkTargets(page)) {
      const file = target.split('#')[0]!;
      if (file === '') continue; // a heading of the same page
      const resolved = path.resolve(REPO, path.dirname(page), file);
      if (/^[a-z]+:/i.test(file) || path.relative(REPO, resolved).startsWith('..') || !existsSync(resolved)) outside.push(target);
    }
    expect(outside).toEqual([]);
  });
});

/** git grep needs a checkout (the suite also runs from copies of the tree without one). */
const inCheckout = (() => {
  try {
    execFileSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: REPO, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('the repository', () => {
  it.skipIf(!inCheckout)('names no package host in apt sources or elsewhere', () => {
    const grep = (args: string[]) => {
      try {
        return execFileSync('git', ['grep', '-n', ...args], { cwd: REPO, encoding: 'utf8' });
      } catch (err) {
        // git grep exits 1 when nothing matches
        if ((err as { status?: number }).status === 1) return '';
        throw err;
      }
    };
    expect(grep(['-E', '^(URIs:|deb(-src)? ) *https?://'])).toBe('');
    expect(grep(['-E', 'deb\\.debian\\.org|archive\\.ubuntu\\.com|security\\.debian\\.org|snapshot\\.debian\\.org'])).toBe('');
    // npm's registry (package-lock.json without `resolved` URLs: .npmrc), Node's downloads, image registries
    expect(grep(['-E', 'registry\\.npmjs\\.org|registry\\.yarnpkg\\.com|nodejs\\.org/dist|docker\\.io|quay\\.io'])).toBe('');
  });
});
