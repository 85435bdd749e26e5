// Compile-argument analysis as a specification: real invocations from real builds and what
// must happen to each, then the output-naming and scan rules checked against real gcc and
// clang, which is what keeps the flag table honest.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyse } from '../node/args/analyse.js';
import { expandResponseFiles, splitResponseFile } from '../node/args/response-files.js';
import type { Analysis, AnalysisContext, DistributableJob } from '../node/args/types.js';
import { BUILD_SYSTEM_INVOCATIONS, KBUILD_AFLAGS, KBUILD_CLANG_CFLAGS, KBUILD_GCC_CFLAGS } from './args-invocations.js';
import { MORE_INVOCATIONS } from './args-invocations-more.js';
import { tempDir } from './helpers/tmp.js';

/** Splits a command line like a shell, for quotes only (no escapes, no expansions). */
function words(cmd: string): string[] {
  return [...cmd.matchAll(/(?:'[^']*'|"[^"]*"|[^\s'"]+)+/g)].map((m) => m[0].replace(/'([^']*)'|"([^"]*)"/g, '$1$2'));
}

function context(opts: { cwd?: string; env?: Record<string, string>; files?: Record<string, string> | string[] } = {}): AnalysisContext {
  const cwd = opts.cwd ?? '/src/build';
  const files = Array.isArray(opts.files) ? Object.fromEntries(opts.files.map((f) => [f, ''])) : (opts.files ?? {});
  const at = (p: string) => path.resolve(cwd, p);
  const known = new Map(Object.entries(files).map(([p, text]) => [at(p), text]));
  return {
    cwd,
    env: opts.env ?? {},
    readFile: (p) => {
      const text = known.get(at(p));
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
    exists: (p) => known.has(at(p)),
  };
}

function job(a: Analysis): DistributableJob {
  if (!a.distributable) throw new Error(`expected a distributable job, got local: ${a.reason} (${a.detail ?? ''})`);
  return a;
}

const INVOCATIONS = [...BUILD_SYSTEM_INVOCATIONS, ...MORE_INVOCATIONS];

describe('real invocations', () => {
  it('covers at least 60 of them', () => {
    expect(INVOCATIONS.length).toBeGreaterThanOrEqual(60);
  });

  it.each(INVOCATIONS)('$name', (inv) => {
    const argv = words(inv.cmd);
    const analysis = analyse(argv, context({ cwd: inv.cwd, env: inv.env, files: inv.files }));
    if ('reason' in inv.expect) {
      expect(analysis).toMatchObject({ distributable: false, reason: inv.expect.reason });
      return;
    }
    const j = job(analysis);
    expect(j.object).toBe(inv.expect.object);
    expect(j.depFile).toBe(inv.expect.depFile);
    expect(j.outputs).toEqual(inv.expect.outputs);
    if (inv.expect.language) expect(j.language).toBe(inv.expect.language);
    expect(j.argv).toEqual(argv);
    expect(j.scanArgv.slice(-4)).toEqual(['-M', '-MT', 'meshcc-scan', '-v']);
  });
});

describe('the compiler as invoked', () => {
  it.each([
    ['gcc', 'gcc'],
    ['g++', 'gcc'],
    ['cc', 'gcc'],
    ['c++', 'gcc'],
    ['/usr/bin/x86_64-linux-gnu-gcc-12', 'gcc'],
    ['/usr/lib/ccache/g++', 'gcc'],
    ['arm-none-eabi-gcc', 'gcc'],
    ['clang', 'clang'],
    ['clang++', 'clang'],
    ['/usr/bin/clang-14', 'clang'],
    ['clang++-14', 'clang'],
    ['x86_64-linux-gnu-clang', 'clang'],
  ])('%s is the %s family', (compiler, family) => {
    expect(job(analyse([compiler, '-c', 'a.c'], context())).family).toBe(family);
  });

  it.each(['gcc-ar', 'gcc-nm', 'cpp', 'ld', 'clang-format', 'clang-cl', 'c++filt', 'ccache', 'gfortran', ''])(
    '%s is not a C/C++ compiler',
    (compiler) => {
      expect(analyse([compiler, '-c', 'a.c'], context())).toMatchObject({ reason: 'not-a-compiler' });
    },
  );
});

describe('scanArgv', () => {
  const scan = (cmd: string) => job(analyse(words(cmd), context())).scanArgv;

  it('drops -c, -o and the Kbuild -Wp,-MMD,FILE, keeps everything else in order', () => {
    expect(scan('gcc -Wp,-MMD,kernel/.fork.o.d -nostdinc -I./include -O2 -pg -c -o kernel/fork.o kernel/fork.c')).toEqual(
      ['gcc', '-nostdinc', '-I./include', '-O2', '-pg', 'kernel/fork.c', '-M', '-MT', 'meshcc-scan', '-v'],
    );
  });

  it('drops -MD -MT X -MF Y (CMake)', () => {
    expect(scan('c++ -DFOO -MD -MT CMakeFiles/x.dir/a.cpp.o -MF CMakeFiles/x.dir/a.cpp.o.d -o CMakeFiles/x.dir/a.cpp.o -c /src/a.cpp')).toEqual(
      ['c++', '-DFOO', '/src/a.cpp', '-M', '-MT', 'meshcc-scan', '-v'],
    );
  });

  it('drops -MMD -MP -MQ X and the joined forms -MFfile -oobj', () => {
    expect(scan('cc -MMD -MP -MQ a.o -MFa.d -oa.o -c a.c')).toEqual(['cc', 'a.c', '-M', '-MT', 'meshcc-scan', '-v']);
  });

  it('keeps the other options of a -Wp, that also carries -MD,FILE', () => {
    expect(scan('gcc -Wp,-MD,a.d,-DX=1 -c a.c')).toEqual(['gcc', '-Wp,-DX=1', 'a.c', '-M', '-MT', 'meshcc-scan', '-v']);
  });

  it('keeps -x, -include and the output-writing flags that -M ignores (-gsplit-dwarf, -fstack-usage)', () => {
    expect(scan('gcc -x c -include cfg.h -g -gsplit-dwarf -fstack-usage -c a.src -o a.o')).toEqual(
      ['gcc', '-x', 'c', '-include', 'cfg.h', '-g', '-gsplit-dwarf', '-fstack-usage', 'a.src', '-M', '-MT', 'meshcc-scan', '-v'],
    );
  });
});

describe('dependency files', () => {
  const dep = (cmd: string) => job(analyse(words(cmd), context())).depFile;

  it('-MD with -o replaces the object extension with .d', () => expect(dep('gcc -MD -c src/a.c -o out/a.obj')).toBe('out/a.d'));
  it('-MD without -o uses the source basename in the cwd', () => expect(dep('gcc -MD -c src/a.x.c')).toBe('a.x.d'));
  it('-MD with an extensionless -o appends .d', () => expect(dep('clang -MMD -c a.c -o out/a')).toBe('out/a.d'));
  it('the last -MF wins', () => expect(dep('gcc -MMD -MF 1.d -MF 2.d -c a.c')).toBe('2.d'));
  it('-Wp,-MD,FILE wins over -MD', () => expect(dep('gcc -MD -Wp,-MD,k.d -c a.c -o a.o')).toBe('k.d'));
  it('-MF alone writes nothing', () => expect(dep('clang -MF a.d -c a.c -o a.o')).toBeUndefined());
});

describe('-Xpreprocessor', () => {
  it('passes preprocessor options through', () => {
    expect(job(analyse(words('gcc -Xpreprocessor -DX=1 -c a.c'), context())).outputs).toEqual(['a.o']);
  });

  it('keeps a dependency file asked for through it local, since the scan cannot drop it', () => {
    expect(analyse(words('gcc -Xpreprocessor -MD -Xpreprocessor a.d -c a.c'), context())).toMatchObject({ reason: 'unknown-option' });
  });

  it('does not confuse -Wp,-MD,FILE with it', () => {
    expect(job(analyse(words('gcc -Xpreprocessor -DX -Wp,-MD,a.d -c a.c'), context())).depFile).toBe('a.d');
  });
});

describe('response files', () => {
  it('splits like libiberty: quotes, backslashes everywhere, empty quotes, no comments', () => {
    expect(splitResponseFile(`-DA="x y"  -DB='p q' -DC=a\\ b -DD="a\\"b" -DE='a\\'b' -DF=\\\\z '' # c\n`)).toEqual([
      '-DA=x y',
      '-DB=p q',
      '-DC=a b',
      '-DD=a"b',
      "-DE=a'b",
      '-DF=\\z',
      '',
      '#',
      'c',
    ]);
  });

  it('keeps a backslash-newline inside the argument and drops a trailing backslash', () => {
    expect(splitResponseFile('-DQ=1\\\n-DR=2 x\\')).toEqual(['-DQ=1\n-DR=2', 'x']);
  });

  it('expands nested @files relative to the cwd, in place', () => {
    const ctx = context({ files: { 'd/outer.rsp': '-DA @inner.rsp -DC', 'inner.rsp': '-DB' } });
    expect(expandResponseFiles(['-c', '@d/outer.rsp', 'a.c'], ctx.readFile)).toEqual({ args: ['-c', '-DA', '-DB', '-DC', 'a.c'], unreadable: [] });
  });

  it('leaves an unreadable @file literal, and the job runs locally', () => {
    const ctx = context();
    expect(expandResponseFiles(['@nope.rsp', 'a.c'], ctx.readFile)).toEqual({ args: ['@nope.rsp', 'a.c'], unreadable: ['@nope.rsp'] });
    expect(analyse(['gcc', '-c', '@nope.rsp', 'a.c'], ctx)).toMatchObject({ reason: 'unreadable-response-file' });
  });

  it('gives up on a response file that names itself, as gcc does', () => {
    const ctx = context({ files: { 'loop.rsp': '-DX @loop.rsp' } });
    expect(analyse(['gcc', '-c', '@loop.rsp', 'a.c'], ctx)).toMatchObject({ reason: 'unreadable-response-file' });
  });

  it('a CMake/Ninja @file on disk expands into the argv the job runs', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'CMakeFiles/x.dir'), { recursive: true });
    writeFileSync(path.join(dir, 'CMakeFiles/x.dir/includes_CXX.rsp'), '-I/src/include -I"/src/with space" -DNAME=\'"x"\'\n');
    const ctx: AnalysisContext = {
      cwd: dir,
      env: {},
      readFile: (p) => readFileSync(path.resolve(dir, p), 'utf8'),
      exists: (p) => existsSync(path.resolve(dir, p)),
    };
    const j = job(analyse(['/usr/bin/c++', '@CMakeFiles/x.dir/includes_CXX.rsp', '-O2', '-c', '/src/a.cpp', '-o', 'a.o'], ctx));
    expect(j.argv).toEqual(['/usr/bin/c++', '-I/src/include', '-I/src/with space', '-DNAME="x"', '-O2', '-c', '/src/a.cpp', '-o', 'a.o']);
  });
});

// ── Against the real compilers ───────────────────────────────────────────────────────────

const COMPILERS = ['/usr/bin/gcc', '/usr/bin/clang'].filter((c) => existsSync(c));
const TRIVIAL_C = '#include "h.h"\nint f(void) { return X; }\n';

/** A fresh project: sub/a.c, sub/a.x.c, sub/noext, sub/s.S (all including sub/h.h), and out/. */
function project(): string {
  const dir = tempDir('meshcc-args-');
  mkdirSync(path.join(dir, 'sub'));
  mkdirSync(path.join(dir, 'out'));
  writeFileSync(path.join(dir, 'sub/h.h'), '#define X 1\n');
  for (const f of ['a.c', 'a.x.c', 'noext']) writeFileSync(path.join(dir, 'sub', f), TRIVIAL_C);
  writeFileSync(path.join(dir, 'sub/s.S'), '#include "h.h"\n.text\n.globl g\ng: ret\n');
  return dir;
}

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix)).flatMap((name) => {
    const rel = prefix ? `${prefix}/${name}` : name;
    return statSync(path.join(dir, rel)).isDirectory() ? filesUnder(dir, rel) : [rel];
  });
}

function run(argv: string[], cwd: string) {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What each compiler writes, by rule. `only` limits a rule to one family. */
const NAMING_RULES: { rule: string; args: string; only?: 'gcc' | 'clang' }[] = [
  { rule: 'no -o: the basename .o in the cwd', args: '-c sub/a.c' },
  { rule: '-o X', args: '-c sub/a.c -o out/x.o' },
  { rule: '-oX (joined)', args: '-c sub/a.c -oout/y.o' },
  { rule: 'the last -o wins', args: '-c sub/a.c -o out/q.o -o out/r.o' },
  { rule: '-MD without -o: basename.d in the cwd', args: '-c sub/a.c -MD' },
  { rule: '-MD with a dotted basename', args: '-c sub/a.x.c -MD' },
  { rule: '-MMD with -o x.y.o: x.y.d', args: '-c sub/a.c -MMD -o out/x.y.o' },
  { rule: '-MD with an extensionless -o', args: '-c sub/a.c -MD -o out/x' },
  { rule: '-MD with -o .x: the leading dot starts the extension', args: '-c sub/a.c -MD -o out/.x' },
  { rule: '-MD -MF -MT -MP', args: '-c sub/a.c -MD -MF out/z.d -MT t -MP -o out/x.o' },
  { rule: 'the last -MF wins', args: '-c sub/a.c -MMD -MF out/m.d -MF out/n.d -o out/x.o' },
  { rule: '-Wp,-MMD,FILE (Kbuild)', args: '-c sub/a.c -Wp,-MMD,out/.x.o.d -o out/x.o' },
  { rule: '-Wp,-MD,FILE wins over -MD', args: '-c sub/a.c -MD -Wp,-MD,out/k.d -o out/x.o' },
  { rule: '-MF without -MD is ignored by clang', args: '-c sub/a.c -MF out/k.d -o out/x.o', only: 'clang' },
  { rule: '-x c on an extensionless source', args: '-c -x c sub/noext -MD' },
  { rule: '.S with -MD', args: '-c sub/s.S -MD -o out/s.o' },
  { rule: '-x c++ with -MD', args: '-x c++ -c sub/a.c -MD -o out/x.o' },
  { rule: '-g -gsplit-dwarf: a .dwo beside the object', args: '-c sub/a.c -g -gsplit-dwarf -o out/x.o' },
  { rule: '-gsplit-dwarf without -o', args: '-c sub/a.c -g -gsplit-dwarf' },
  { rule: '-gsplit-dwarf without -g (gcc: .dwo, clang: none)', args: '-c sub/a.c -gsplit-dwarf -o out/x.o' },
  { rule: '-gsplit-dwarf then -g0 (gcc: .dwo, clang: none)', args: '-c sub/a.c -g -gsplit-dwarf -g0 -o out/x.o' },
  { rule: '-gsplit-dwarf with -flto (gcc: .dwo, clang: none)', args: '-c sub/a.c -g -gsplit-dwarf -flto -o out/x.o' },
  { rule: '-gno-split-dwarf after -gsplit-dwarf', args: '-c sub/a.c -g -gsplit-dwarf -gno-split-dwarf -o out/x.o' },
  { rule: '-gsplit-dwarf=single writes no .dwo', args: '-c sub/a.c -g -gsplit-dwarf=single -o out/x.o', only: 'clang' },
  { rule: '-gsplit-dwarf with -gline-tables-only', args: '-c sub/a.c -gline-tables-only -gsplit-dwarf -o out/x.o', only: 'clang' },
  { rule: '-fstack-usage: a .su beside the object', args: '-c sub/a.c -fstack-usage -o out/x.o' },
  { rule: '-fstack-usage with -flto writes no .su', args: '-c sub/a.c -fstack-usage -flto -o out/x.o' },
  { rule: '-fstack-usage with -flto then -fno-lto', args: '-c sub/a.c -fstack-usage -flto -fno-lto -o out/x.o' },
  { rule: 'everything at once', args: '-c sub/a.x.c -MD -g -gsplit-dwarf -fstack-usage' },
  { rule: '.S with -gsplit-dwarf and no -g: a .dwo from both', args: '-c sub/s.S -gsplit-dwarf -o out/s.o' },
  { rule: '.S with -gsplit-dwarf and -g0: a .dwo from both', args: '-c sub/s.S -g -gsplit-dwarf -g0 -o out/s.o' },
  { rule: '.S with -fstack-usage: no .su (no cc1)', args: '-c sub/s.S -fstack-usage -MD -o out/s.o' },
];

describe.each(COMPILERS)('what %s really writes', (compiler) => {
  const family = compiler.includes('clang') ? 'clang' : 'gcc';
  const rules = NAMING_RULES.filter((r) => r.only === undefined || r.only === family);

  it.each(rules)('$rule: $args', ({ args }) => {
    const dir = project();
    const before = new Set(filesUnder(dir));
    const argv = [compiler, ...words(args)];
    const j = job(analyse(argv, { cwd: dir, env: {}, readFile: () => '', exists: () => false }));
    const r = run(argv, dir);
    expect(r.status, r.stderr).toBe(0);
    const written = filesUnder(dir).filter((f) => !before.has(f));
    expect(written.sort()).toEqual([...j.outputs].sort());
  });

  it.skipIf(family !== 'gcc')('gcc fails on -MF without -MD, writing nothing', () => {
    const dir = project();
    const before = filesUnder(dir);
    expect(run([compiler, '-c', 'sub/a.c', '-MF', 'out/k.d', '-o', 'out/x.o'], dir).status).not.toBe(0);
    expect(filesUnder(dir)).toEqual(before);
  });

  it('reads response files exactly as the compiler does: quotes, backslashes, nested files relative to the cwd', () => {
    const dir = project();
    mkdirSync(path.join(dir, 'd'));
    const outer = `-DA="x y"  -DB='p q' -DC=a\\ b -DD="a\\"b" -DE='a\\'b' -DF=\\\\z\n@inner.rsp\n`;
    writeFileSync(path.join(dir, 'd/outer.rsp'), outer);
    writeFileSync(path.join(dir, 'inner.rsp'), '-DINNER_FROM_CWD');
    writeFileSync(path.join(dir, 'd/inner.rsp'), '-DINNER_FROM_FILE_DIR');
    const ctx: AnalysisContext = { cwd: dir, env: {}, readFile: (p) => readFileSync(path.resolve(dir, p), 'utf8'), exists: () => false };
    const predicted = expandResponseFiles(['@d/outer.rsp'], ctx.readFile).args;
    const r = run([compiler, '-E', '-dM', '@d/outer.rsp', '-x', 'c', '/dev/null'], dir);
    expect(r.status, r.stderr).toBe(0);
    const defined = r.stdout.split('\n').filter((l) => /^#define (A|B|C|D|E|F|INNER_\w+) /.test(l));
    const expected = predicted.map((a) => a.replace(/^-D/, '#define ').replace('=', ' ').replace(/^(#define INNER_\w+)$/, '$1 1'));
    expect(defined.sort()).toEqual(expected.sort());
    expect(predicted).toContain('-DINNER_FROM_CWD');
  });

  it('compiles through a response file with quotes and escaped spaces into the predicted object', () => {
    const dir = project();
    mkdirSync(path.join(dir, 'out dir'));
    writeFileSync(path.join(dir, 'args.rsp'), `-c sub/a.c -DY='2' -o "out dir/a b.o" -MD\n`);
    const ctx: AnalysisContext = { cwd: dir, env: {}, readFile: (p) => readFileSync(path.resolve(dir, p), 'utf8'), exists: () => false };
    const j = job(analyse([compiler, '@args.rsp'], ctx));
    expect(j.outputs).toEqual(['out dir/a b.o', 'out dir/a b.d']);
    const before = new Set(filesUnder(dir));
    expect(run([compiler, '@args.rsp'], dir).status).toBe(0);
    expect(filesUnder(dir).filter((f) => !before.has(f)).sort()).toEqual([...j.outputs].sort());
  });

  const kbuild = family === 'gcc' ? KBUILD_GCC_CFLAGS : KBUILD_CLANG_CFLAGS;
  it.each([
    ['a Kbuild C object', `-Wp,-MMD,out/.x.o.d -nostdinc -Isub ${kbuild} -DKBUILD_MODFILE='"kernel/fork"' -c -o out/x.o sub/a.c`],
    ['a Kbuild C object with split DWARF', `-Wp,-MMD,out/.x.o.d -nostdinc -Isub ${kbuild} -gsplit-dwarf -c -o out/x.o sub/a.c`],
    ['a Kbuild .S object', `-Wp,-MMD,out/.s.o.d -nostdinc -Isub ${KBUILD_AFLAGS} -c -o out/s.o sub/s.S`],
  ])('%s, with the real Kbuild flags, writes what analysis predicts and scans cleanly', (_what, args) => {
    const dir = project();
    const before = filesUnder(dir);
    const argv = [compiler, ...words(args)];
    const j = job(analyse(argv, { cwd: dir, env: {}, readFile: () => '', exists: () => false }));
    const scan = run(j.scanArgv, dir);
    expect(scan.status, scan.stderr).toBe(0);
    expect(scan.stdout).toMatch(/^meshcc-scan:/);
    expect(filesUnder(dir)).toEqual(before);
    const r = run(argv, dir);
    expect(r.status, r.stderr).toBe(0);
    expect(filesUnder(dir).filter((f) => !before.includes(f)).sort()).toEqual([...j.outputs].sort());
  });

  const SCANNED = [
    '-c sub/a.c -o out/x.o',
    '-Wp,-MMD,out/.x.o.d -nostdinc -Isub -O2 -pg -c -o out/x.o sub/a.c',
    '-MD -MT out/x.o -MF out/x.o.d -MP -o out/x.o -c sub/a.c',
    '-MMD -MQ out/x.o -MFout/x.d -oout/x.o -c sub/a.c',
    '-Wp,-MD,out/k.d,-DY=2 -c sub/a.c',
    '-g -gsplit-dwarf -fstack-usage -c sub/a.c -o out/x.o',
    '-x c -include sub/h.h -c sub/noext',
    '-Wa,--noexecstack -c sub/s.S -MD -o out/s.o',
    '-x c++ -std=gnu++17 -c sub/a.c -MD',
    '-O2 -flto -c sub/a.c -o out/x.o',
  ];

  it.each(SCANNED)('scanArgv of `%s` prints the make rule and the search list, and writes nothing', (args) => {
    const dir = project();
    const before = filesUnder(dir);
    const j = job(analyse([compiler, ...words(args)], { cwd: dir, env: {}, readFile: () => '', exists: () => false }));
    const r = run(j.scanArgv, dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^meshcc-scan:/);
    expect(r.stdout).toContain('sub/h.h');
    expect(r.stderr).toContain('#include <...> search starts here:');
    expect(filesUnder(dir)).toEqual(before);
  });

  it.skipIf(family !== 'gcc')('gcc finds -include X as X.gch in an -I directory, which the -M scan cannot use', () => {
    const dir = project();
    mkdirSync(path.join(dir, 'app.p'));
    writeFileSync(path.join(dir, 'sub/pch.h'), '#define HH 42\n');
    expect(run([compiler, '-x', 'c-header', 'sub/pch.h', '-o', 'app.p/pch.h.gch'], dir).status).toBe(0);
    writeFileSync(path.join(dir, 'm.c'), 'int v = HH;\n');
    const argv = [compiler, '-Iapp.p', '-include', 'pch.h', '-c', 'm.c', '-o', 'out/m.o'];
    expect(run(argv, dir).status).toBe(0);
    expect(run([compiler, '-Iapp.p', '-include', 'pch.h', 'm.c', '-M', '-MT', 'meshcc-scan'], dir).status).not.toBe(0);
    const ctx: AnalysisContext = { cwd: dir, env: {}, readFile: () => '', exists: (p) => existsSync(path.resolve(dir, p)) };
    expect(analyse(argv, ctx)).toMatchObject({ reason: 'precompiled-header' });
  });
});
