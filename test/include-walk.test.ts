// The input scan that reads include directives itself: it must find a superset of what the
// compiler's own -M lists (so job roots hold every file a compile opens), give up where it
// cannot know (computed includes it cannot follow, precompiled headers), and a file it
// misses anyway must end in a local compile, never in a different object.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Job } from '../protocol/messages.js';
import { Executor, JobFailure } from '../node/executor/executor.js';
import { readDirectives } from '../node/scan/directives.js';
import { DirCache } from '../node/scan/dir-cache.js';
import { InputHasher } from '../node/scan/hasher.js';
import { InputScanner, type ScanRequest } from '../node/scan/scanner.js';
import type { SearchChains } from '../node/scan/search-probe.js';
import { WalkScanner } from '../node/scan/walk-scan.js';
import { WalkThread, walkThreadsFor } from '../node/scan/walk-thread.js';
import { Store } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' };

describe('include directives', () => {
  it('reads directives, not text that mentions them', () => {
    const text = [
      '/* an old comment: #include "in-comment.h" */',
      '// #include "line-comment.h"',
      'const char *s = "#include \\"in-string.h\\"";',
      '#include <a.h>',
      '  /* lead */ # include "b.h" // trailing',
      '%:include <digraph.h>',
      '#include \\',
      '  "spliced.h"',
      '#include_next <next.h>',
      '#import "objc.h"',
      "   #include's protect themselves (a comment's text in a real header, outside any comment)",
      '#define HEADER "via-macro.h"',
      '#include HEADER',
      '/*',
      '#include "inside-block.h"',
      '*/',
    ].join('\n');
    const read = readDirectives(text);
    expect(read.directives.map((d) => `${d.kind}:${d.quoted ? '"' : '<'}${d.name}`)).toEqual([
      'include:<a.h',
      'include:"b.h',
      'include:<digraph.h',
      'include:"spliced.h',
      'include_next:<next.h',
      'import:"objc.h',
    ]);
    expect(read.computed).toEqual([{ kind: 'include', expression: 'HEADER' }]);
    expect(read.opaque).toBe(false);
    expect(read.defines.get('HEADER')).toEqual(['"via-macro.h"']);
    const functionLike = readDirectives('#define MAKE_NAME(x, rest...) #x /* why */\n#include MAKE_NAME(x) // a call\n');
    expect(functionLike.computed).toEqual([{ kind: 'include', expression: 'MAKE_NAME(x)' }]);
    expect(functionLike.functions.get('MAKE_NAME')).toEqual([{ params: ['x', 'rest...'], body: '#x' }]);
  });
});

function project() {
  const dir = tempDir();
  for (const d of ['src', 'inc', 'quote', 'wrap', 'gen']) mkdirSync(path.join(dir, d));
  writeFileSync(path.join(dir, 'inc', 'lib.h'), '#pragma once\n#include "detail.h"\n#include <stdio.h>\n');
  writeFileSync(path.join(dir, 'inc', 'detail.h'), '#define DETAIL 1\n');
  writeFileSync(path.join(dir, 'quote', 'q.h'), '#define Q 2\n');
  // #include_next through a wrapper in front of the system's limits.h
  writeFileSync(path.join(dir, 'wrap', 'limits.h'), '#include_next <limits.h>\n#define WRAPPED 1\n');
  writeFileSync(path.join(dir, 'src', 'near.h'), '#define NEAR 3\n');
  writeFileSync(path.join(dir, 'src', 'chosen.h'), '#define CHOSEN 4\n');
  writeFileSync(path.join(dir, 'inc', 'config.h'), '#define CONFIG_HEADER "chosen.h"\n');
  writeFileSync(
    path.join(dir, 'src', 'main.c'),
    [
      '#include "near.h"',
      '#include <lib.h>',
      '#include "q.h"',
      '#include <limits.h>',
      '#include "config.h"',
      '#include CONFIG_HEADER',
      '#include SOURCE_HEADER',
      '#include "probe.h"',
      '#ifndef HAVE_OPTIONAL',
      '#error the job root must show optional.h',
      '#endif',
      '#if 0',
      '#include "does-not-exist.h"',
      '#endif',
      // the kernel's tracepoints: an include computed by function-like macros, twice
      '#define TRACE_SYSTEM sched',
      '#include "trace.h"',
      '#undef TRACE_SYSTEM',
      '#define TRACE_SYSTEM local',
      '#define TRACE_INCLUDE_PATH ../src',
      '#include "trace.h"',
      'int main(void) { return NEAR + DETAIL + Q + WRAPPED + CHOSEN + FROM_D + SCHED_EVENTS + LOCAL_EVENTS; }',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'gen', 'from-d.h'), '#define FROM_D 5\n');
  writeFileSync(
    path.join(dir, 'inc', 'trace.h'),
    [
      '#define __stringify_1(x...) #x',
      '#define __stringify(x...) __stringify_1(x)',
      '#undef __TRACE_INCLUDE',
      '#ifndef TRACE_INCLUDE_PATH',
      '# define __TRACE_INCLUDE(system) <events/system.h>',
      '#else',
      '# define __TRACE_INCLUDE(system) __stringify(TRACE_INCLUDE_PATH/system.h)',
      '#endif',
      '#define TRACE_INCLUDE(system) __TRACE_INCLUDE(system)',
      '#include TRACE_INCLUDE(TRACE_SYSTEM)',
      '',
    ].join('\n'),
  );
  mkdirSync(path.join(dir, 'inc', 'events'));
  writeFileSync(path.join(dir, 'inc', 'events', 'sched.h'), '#define SCHED_EVENTS 6\n');
  writeFileSync(path.join(dir, 'src', 'local.h'), '#define LOCAL_EVENTS 7\n');
  // asked about but never included: the job root must show it exists
  writeFileSync(path.join(dir, 'inc', 'optional.h'), '#error not to be included\n');
  writeFileSync(path.join(dir, 'inc', 'probe.h'), '#if __has_include(<optional.h>) && !__has_include("absent.h")\n#define HAVE_OPTIONAL 1\n#endif\n');
  return dir;
}

function request(dir: string, compiler: string, extra: string[] = []): ScanRequest {
  const argv = [path.basename(compiler), '-O2', '-Iwrap', '-Iinc', '-iquote', 'quote', '-Igen', '-DSOURCE_HEADER="from-d.h"', ...extra, 'src/main.c'];
  return { compiler, scanArgv: [...argv, '-M', '-MT', 'meshcc-scan', '-v'], cwd: dir, env, source: 'src/main.c', language: 'c' };
}

describe('the include walk', () => {
  for (const compiler of ['/usr/bin/gcc', '/usr/bin/clang']) {
    it(`${path.basename(compiler)}: finds every file -M lists, through -I, -iquote, #include_next and computed includes`, async () => {
      const dir = project();
      const walked = await new InputScanner().scan(request(dir, compiler));
      const exact = await new InputScanner(undefined, false).scan(request(dir, compiler));
      expect(walked.method).toBe('walk');
      expect(exact.method).toBe('compiler');
      expect(exact.files.filter((f) => !walked.files.includes(f))).toEqual([]);
      for (const f of ['src/near.h', 'src/chosen.h', 'gen/from-d.h', 'quote/q.h', 'wrap/limits.h', 'inc/detail.h', 'inc/events/sched.h', 'src/local.h']) {
        expect(walked.files).toContain(path.join(dir, f));
      }
      expect(walked.files.some((f) => f.endsWith('does-not-exist.h'))).toBe(false);
      // What __has_include asks about travels too; nothing else of the search directories does.
      expect(walked.files).toContain(path.join(dir, 'inc', 'optional.h'));
      expect(walked.listings).toEqual([]);
      expect(exact.listings.length).toBeGreaterThan(3);
    });
  }

  it('asks the compiler where it cannot follow: a name the compiler may predefine, a precompiled header', async () => {
    const dir = project();
    // In GNU modes `linux` is a predefined macro (1): "1/q.h", which no file defines.
    writeFileSync(path.join(dir, 'inc', 'detail.h'), '#define NAME_(x) #x\n#define NAME(x) NAME_(x)\n#include NAME(linux/q.h)\n');
    mkdirSync(path.join(dir, 'inc', '1'));
    writeFileSync(path.join(dir, 'inc', '1', 'q.h'), '\n');
    const scanner = new InputScanner();
    const scan = await scanner.scan(request(dir, '/usr/bin/gcc'));
    expect(scan.method).toBe('compiler');
    expect([...scanner.counts.reasons.keys()][0]).toMatch(/linux may be predefined/);

    const other = project();
    writeFileSync(path.join(other, 'inc', 'lib.h.gch'), 'not really a PCH');
    const scanner2 = new InputScanner();
    await scanner2.scan(request(other, '/usr/bin/gcc')).catch(() => undefined);
    expect([...scanner2.counts.reasons.keys()][0]).toMatch(/precompiled header/);
  });

  it('sees a header generated after an earlier scan (the directory changed)', async () => {
    const dir = project();
    const scanner = new InputScanner();
    writeFileSync(path.join(dir, 'src', 'main.c'), '#include "late.h"\nint main(void) { return 0; }\n');
    const first = await scanner.scan(request(dir, '/usr/bin/gcc'));
    expect(first.files.some((f) => f.endsWith('late.h'))).toBe(false);
    writeFileSync(path.join(dir, 'gen', 'late.h'), '#define LATE 1\n');
    const second = await scanner.scan(request(dir, '/usr/bin/gcc'));
    expect(second.files).toContain(path.join(dir, 'gen', 'late.h'));
    // and a header rewritten in place (same directory mtime) is read again
    writeFileSync(path.join(dir, 'gen', 'late.h'), '#include "later.h"\n');
    writeFileSync(path.join(dir, 'gen', 'later.h'), '\n');
    const old = new Date(Date.now() - 60_000);
    utimesSync(path.join(dir, 'gen'), old, old);
    const third = await scanner.scan(request(dir, '/usr/bin/gcc'));
    expect(third.files).toContain(path.join(dir, 'gen', 'later.h'));
  });

  it('a walked job compiles to the plain object; a file the scan missed stops the compile (placeholder), so the job goes back to a local compile', async () => {
    const dir = project();
    const home = tempDir();
    const log = pino({ level: 'silent' });
    const store = new Store(path.join(home, 'store'), 64 * 1024 * 1024, log);
    await store.start();
    const executor = new Executor({ store, workDir: path.join(home, 'jobs'), slots: 1, timeoutMs: 60_000, log });
    await executor.start();
    if (executor.sandboxUnavailableReason) {
      console.log(`skipped: ${executor.sandboxUnavailableReason}`);
      return;
    }
    try {
      const scan = await new InputScanner().scan(request(dir, '/usr/bin/gcc'));
      const hasher = new InputHasher(store);
      const argv = ['gcc', '-O2', '-g', '-Iwrap', '-Iinc', '-iquote', 'quote', '-Igen', '-DSOURCE_HEADER="from-d.h"', '-c', 'src/main.c', '-o', 'main.o'];
      const whole = await Promise.all(scan.files.map((f) => hasher.hash(f)));
      const good: Job = { id: 'walked', compiler: '/usr/bin/gcc', argv, cwd: dir, env, inputs: whole, listings: scan.listings, dirs: scan.dirs, outputs: [path.join(dir, 'main.o')] };
      const result = await executor.run(good);
      expect(result.stderr.toString()).toBe('');
      expect(result.exit).toBe(0);
      execFileSync('/usr/bin/gcc', argv.slice(1), { cwd: dir, env });
      expect(Buffer.compare(Buffer.from(result.outputs[0]!.data), readFileSync(path.join(dir, 'main.o')))).toBe(0);

      // A scan that missed near.h: absent from the root (a walk lists nothing), or a
      // placeholder where the compiler's scan listed its directory.
      const inputs = await Promise.all(scan.files.filter((f) => !f.endsWith('near.h')).map((f) => hasher.hash(f)));
      const placeholder = { path: path.join(dir, 'src'), entries: [{ name: 'near.h', dir: false }, { name: 'main.c', dir: false }] };
      for (const listings of [[], [placeholder]]) {
        const job: Job = { id: 'miss', compiler: '/usr/bin/gcc', argv, cwd: dir, env, inputs, listings, dirs: scan.dirs, outputs: [path.join(dir, 'main.o')] };
        const failure = await executor.run(job).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(failure).toBeInstanceOf(JobFailure);
        expect((failure as JobFailure).code).toBe('missing-input');
      }
    } finally {
      await executor.stop();
    }
  });
});

describe('the walk remembers what each file\'s includes resolve to', () => {
  const old = new Date(Date.now() - 60_000);
  const age = (...paths: string[]) => paths.forEach((p) => utimesSync(p, old, old));
  const chainsOf = (dir: string): SearchChains => {
    const list = [path.join(dir, 'first'), path.join(dir, 'second'), dir];
    return { quote: list, bracket: list, all: list, printed: list, implicit: [], ignored: [] };
  };
  const walked = (scanner: WalkScanner, dir: string, chains: SearchChains, unit: string) => {
    const r = scanner.files({ source: path.join(dir, unit), cwd: dir, chains, defines: [], localeEnv: {} });
    if (!r.ok) throw new Error(r.reason);
    return [...r.files].sort();
  };

  it('a header that appears earlier on the path, or goes, is seen by a unit that reaches it only through a remembered header', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'first'));
    mkdirSync(path.join(dir, 'second'));
    writeFileSync(path.join(dir, 'second', 'x.h'), '\n');
    writeFileSync(path.join(dir, 'shared.h'), '#include <x.h>\n');
    writeFileSync(path.join(dir, 'a.c'), '#include "shared.h"\n');
    writeFileSync(path.join(dir, 'b.c'), '#include "shared.h"\n');
    age(...['second/x.h', 'shared.h', 'a.c', 'b.c', 'first', 'second', '.'].map((p) => path.join(dir, p)));
    const chains = chainsOf(dir);
    const scanner = new WalkScanner();
    const fresh = (unit: string) => walked(new WalkScanner(), dir, chains, unit);
    expect(walked(scanner, dir, chains, 'a.c')).toContain(path.join(dir, 'second', 'x.h'));

    // Settled times everywhere: only the changed directory's entries can tell.
    writeFileSync(path.join(dir, 'first', 'x.h'), '#include "only-first.h"\n');
    writeFileSync(path.join(dir, 'first', 'only-first.h'), '\n');
    age(path.join(dir, 'first', 'x.h'), path.join(dir, 'first', 'only-first.h'), path.join(dir, 'first'));
    const shadowed = walked(scanner, dir, chains, 'b.c');
    expect(shadowed).toEqual(fresh('b.c'));
    expect(shadowed).toContain(path.join(dir, 'first', 'only-first.h'));
    expect(shadowed).not.toContain(path.join(dir, 'second', 'x.h'));

    rmSync(path.join(dir, 'first', 'x.h'));
    utimesSync(path.join(dir, 'first'), new Date(Date.now() - 30_000), new Date(Date.now() - 30_000));
    const back = walked(scanner, dir, chains, 'a.c');
    expect(back).toEqual(fresh('a.c'));
    expect(back).toContain(path.join(dir, 'second', 'x.h'));

    // Entries nobody asked about (objects written beside the sources) change no answer.
    writeFileSync(path.join(dir, 'a.o'), '');
    expect(walked(scanner, dir, chains, 'b.c')).toEqual(fresh('b.c'));
  });

  it('a large directory that keeps changing is looked up name by name, and gives the answers a listing would', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'first'));
    mkdirSync(path.join(dir, 'second'));
    mkdirSync(path.join(dir, 'real-dir'));
    writeFileSync(path.join(dir, 'second', 'x.h'), '\n');
    writeFileSync(path.join(dir, 'real-dir', 'in.h'), '\n');
    writeFileSync(path.join(dir, 'unit.c'), '#include "x.h"\n#include "linked/in.h"\n#include "dangling.h"\n');
    // A build directory: hundreds of objects beside the sources, more with every compile.
    for (let i = 0; i < 600; i++) writeFileSync(path.join(dir, `u${i}.o`), '');
    age(...['second/x.h', 'real-dir/in.h', 'real-dir', 'unit.c', 'first', 'second', '.'].map((p) => path.join(dir, p)));
    const chains = chainsOf(dir);
    const scanner = new WalkScanner();
    const fresh = () => walked(new WalkScanner(), dir, chains, 'unit.c');
    expect(walked(scanner, dir, chains, 'unit.c')).toEqual(fresh());

    // The directory changes (a new object), then again with each step below: every answer
    // about an asked name must follow, as a listing's would.
    const touchDir = (name: string) => {
      writeFileSync(path.join(dir, name), '');
      age(path.join(dir, name), dir);
    };
    touchDir('u600.o');
    expect(walked(scanner, dir, chains, 'unit.c')).toEqual(fresh());

    // A header appears in the probed directory, shadowing second/x.h for the quote include.
    writeFileSync(path.join(dir, 'x.h'), '\n');
    touchDir('u601.o');
    expect(walked(scanner, dir, chains, 'unit.c')).toContain(path.join(dir, 'x.h'));
    expect(walked(scanner, dir, chains, 'unit.c')).toEqual(fresh());

    // A link to a directory is a directory; a dangling link is a name, as in a listing.
    symlinkSync(path.join(dir, 'real-dir'), path.join(dir, 'linked'));
    symlinkSync(path.join(dir, 'nowhere.h'), path.join(dir, 'dangling.h'));
    touchDir('u602.o');
    const linked = walked(scanner, dir, chains, 'unit.c');
    expect(linked).toContain(path.join(dir, 'linked', 'in.h'));
    expect(linked).toEqual(fresh());

    // It goes again.
    rmSync(path.join(dir, 'x.h'));
    touchDir('u603.o');
    const gone = walked(scanner, dir, chains, 'unit.c');
    expect(gone).not.toContain(path.join(dir, 'x.h'));
    expect(gone).toEqual(fresh());

    // The mechanism itself: after the first listing, a change costs lookups, not a listing.
    const cache = new DirCache();
    cache.nextEpoch();
    expect(cache.kind(dir, 'unit.c')).toBe('file');
    touchDir('u604.o');
    cache.nextEpoch();
    expect(cache.kind(dir, 'unit.c')).toBe('file');
    expect(cache.kind(dir, 'u604.o')).toBe('file');
    expect(cache.kind(dir, 'linked')).toBe('dir');
    expect(cache.kind(dir, 'absent.h')).toBeUndefined();
    expect(cache.listingsRead).toBe(1);
    // A listing asked for (the compiler's scan) is whole again.
    expect(cache.listing(dir)?.entries.length).toBe(readdirSync(dir).length);
  });

  it('a file that __has_include asks about, appearing later, is seen through every header that asked, also one answered from the walk\'s memo', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'first'));
    mkdirSync(path.join(dir, 'second'));
    mkdirSync(path.join(dir, 'opt'));
    const probe = `#if __has_include("${path.join(dir, 'opt', 'p.h')}")\n#endif\n`;
    writeFileSync(path.join(dir, 'h1.h'), probe);
    writeFileSync(path.join(dir, 'h2.h'), probe);
    writeFileSync(path.join(dir, 'both.c'), '#include "h1.h"\n#include "h2.h"\n');
    writeFileSync(path.join(dir, 'one.c'), '#include "h1.h"\n');
    writeFileSync(path.join(dir, 'two.c'), '#include "h2.h"\n');
    age(...['h1.h', 'h2.h', 'both.c', 'one.c', 'two.c', 'opt', 'first', 'second', '.'].map((p) => path.join(dir, p)));
    const chains = chainsOf(dir);
    const scanner = new WalkScanner();
    const probed = (unit: string) => {
      const r = scanner.files({ source: path.join(dir, unit), cwd: dir, chains, defines: [], localeEnv: {} });
      if (!r.ok) throw new Error(r.reason);
      return [...r.files].filter((f) => f.endsWith('p.h'));
    };
    expect(probed('both.c')).toEqual([]);
    writeFileSync(path.join(dir, 'opt', 'p.h'), '\n');
    // One of the two headers was resolved second, its probe answered from the memo of the first.
    expect(probed('one.c')).toEqual([path.join(dir, 'opt', 'p.h')]);
    expect(probed('two.c')).toEqual([path.join(dir, 'opt', 'p.h')]);
  });
});

describe('the walk thread (the job route scans and hashes off the event loop)', () => {
  /** Files younger than 2 s are hashed again on every scan (they may still be written): age them. */
  const settle = (dir: string) => {
    const old = new Date(Date.now() - 60_000);
    for (const relative of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      const file = path.join(dir, relative);
      if (statSync(file).isFile()) utimesSync(file, old, old);
    }
  };

  /** A walk thread over a fresh store, stopped after `use`. */
  const withThread = async (use: (thread: WalkThread, store: Store) => Promise<void>) => {
    const store = new Store(path.join(tempDir(), 'store'), 64 * 1024 * 1024);
    await store.start();
    const thread = new WalkThread(store);
    try {
      await use(thread, store);
    } finally {
      await thread.stop();
    }
  };

  it('gives the inputs the in-process walk and the hasher give, each object in the store', async () => {
    const dir = project();
    settle(dir);
    await withThread(async (thread, store) => {
      const scanner = new InputScanner(undefined, true, thread);
      const hashed = await scanner.scanHashed(request(dir, '/usr/bin/gcc'), new InputHasher(store));
      expect(hashed.method).toBe('walk');
      const plain = await new InputScanner().scan(request(dir, '/usr/bin/gcc'));
      const expected = await Promise.all(plain.files.map((f) => new InputHasher(store).hash(f)));
      const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);
      expect([...hashed.inputs].sort(byPath)).toEqual([...expected].sort(byPath));
      expect([...hashed.dirs].sort()).toEqual([...plain.dirs].sort());
      for (const input of hashed.inputs) expect(readFileSync(store.pathOf(input.hash))).toEqual(readFileSync(input.path));
      // Unchanged files are the same objects in the next job (the offer tables know them by identity).
      const again = await scanner.scanHashed(request(dir, '/usr/bin/gcc'), new InputHasher(store));
      expect(again.inputs.every((f) => hashed.inputs.includes(f))).toBe(true);
    });
  });

  it('several walk workers: scans spread over them, and a file is one object whichever worker walked it', async () => {
    const dir = project();
    settle(dir);
    const store = new Store(path.join(tempDir(), 'store'), 64 * 1024 * 1024);
    await store.start();
    const thread = new WalkThread(store, true, 3);
    try {
      expect(thread.threads).toBe(3);
      const scanner = new InputScanner(undefined, true, thread);
      // At once: each goes to the worker with the fewest scans waiting, so all three walk it.
      const scans = await Promise.all([1, 2, 3, 4, 5, 6].map(() => scanner.scanHashed(request(dir, '/usr/bin/gcc'), new InputHasher(store))));
      for (const scan of scans) {
        expect(scan.method).toBe('walk');
        expect(scan.inputs).toHaveLength(scans[0]!.inputs.length);
        for (const input of scan.inputs) expect(scans[0]!.inputs).toContain(input);
      }
    } finally {
      await thread.stop();
    }
    expect(walkThreadsFor(2, {})).toBe(1);
    expect(walkThreadsFor(16, {})).toBe(4);
    expect(walkThreadsFor(64, {})).toBe(4);
    expect(walkThreadsFor(2, { MESHCC_WALK_THREADS: '3' })).toBe(3);
  });

  it('sees a header change: new content, new hash, in the store', async () => {
    const dir = project();
    settle(dir);
    await withThread(async (thread, store) => {
      const scanner = new InputScanner(undefined, true, thread);
      const first = await scanner.scanHashed(request(dir, '/usr/bin/gcc'), new InputHasher(store));
      const near = path.join(dir, 'src', 'near.h');
      writeFileSync(near, '#define NEAR 4\n');
      const second = await scanner.scanHashed(request(dir, '/usr/bin/gcc'), new InputHasher(store));
      const before = first.inputs.find((f) => f.path === near)!;
      const after = second.inputs.find((f) => f.path === near)!;
      expect(after.hash).not.toBe(before.hash);
      expect(readFileSync(store.pathOf(after.hash), 'utf8')).toBe('#define NEAR 4\n');
    });
  });

  it('writes a job\'s outputs in the worker, with the mode the client\'s umask gives, nothing else left', async () => {
    const dir = tempDir();
    await withThread(async (thread, store) => {
      const object = Buffer.from('an object');
      await thread.writeOutputs([{ path: path.join(dir, 'a.o'), data: object, executable: false }, { path: path.join(dir, 'a.out'), data: Buffer.from('#!'), executable: true }], 0o027);
      expect(readFileSync(path.join(dir, 'a.o'))).toEqual(object);
      expect(statSync(path.join(dir, 'a.o')).mode & 0o777).toBe(0o640);
      expect(statSync(path.join(dir, 'a.out')).mode & 0o777).toBe(0o750);
      expect(readdirSync(dir).sort()).toEqual(['a.o', 'a.out']);
      await expect(thread.writeOutputs([{ path: path.join(dir, 'missing', 'b.o'), data: object, executable: false }], 0o022)).rejects.toThrow(/ENOENT/);
      // An existing output may be a hard link (into a cache, another tree): it is replaced, never written through.
      linkSync(path.join(dir, 'a.o'), path.join(dir, 'kept.o'));
      await thread.writeOutputs([{ path: path.join(dir, 'a.o'), data: Buffer.from('the next object'), executable: false }], 0o022);
      expect(readFileSync(path.join(dir, 'a.o'), 'utf8')).toBe('the next object');
      expect(readFileSync(path.join(dir, 'kept.o'))).toEqual(object);
      expect(statSync(path.join(dir, 'a.o')).mode & 0o777).toBe(0o644);
      expect(readdirSync(dir).sort()).toEqual(['a.o', 'a.out', 'kept.o']);
    });
  });

  it('a walk the thread cannot make falls back to the compiler\'s -M scan', async () => {
    const dir = project();
    writeFileSync(path.join(dir, 'src', 'main.c'), '#define S_(x) #x\n#define S(x) S_(x)\n#include S(linux/near.h)\nint main(void) { return NEAR; }\n');
    mkdirSync(path.join(dir, 'src', '1'));
    writeFileSync(path.join(dir, 'src', '1', 'near.h'), '#define NEAR 3\n');
    await withThread(async (thread, store) => {
      const hashed = await new InputScanner(undefined, true, thread).scanHashed(request(dir, '/usr/bin/gcc'), new InputHasher(store));
      expect(hashed.method).toBe('compiler');
      expect(hashed.inputs.map((f) => f.path)).toContain(path.join(dir, 'src', '1', 'near.h'));
    });
  });
});
