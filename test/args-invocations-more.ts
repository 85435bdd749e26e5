// Real invocations from other builds and tools (ninja, GN, Debian, setuptools, ccache,
// icecream), and the single options that decide on their own. Used by args.test.ts.
import type { Invocation } from './args-invocations.js';

export const MORE_INVOCATIONS: Invocation[] = [
  // ── Hand-written ninja, GN/Chromium, Debian, Python extensions ──────────────────────
  {
    name: 'ninja rule: clang -MMD -MF before the source',
    cmd: 'clang -MMD -MF obj/foo.o.d -Wall -O2 -c src/foo.c -o obj/foo.o',
    expect: { object: 'obj/foo.o', depFile: 'obj/foo.o.d', outputs: ['obj/foo.o', 'obj/foo.o.d'] },
  },
  {
    name: 'GN/Chromium clang++ object with -mllvm and -Xclang -fno-pch-timestamp',
    cmd:
      '../../third_party/llvm-build/Release+Asserts/bin/clang++ -MMD -MF obj/base/base/at_exit.o.d -DUSE_UDEV -D_GNU_SOURCE ' +
      '-I../.. -Igen -fno-delete-null-pointer-checks -fno-ident -fno-strict-aliasing --param=ssp-buffer-size=4 ' +
      '-fstack-protector -fno-unwind-tables -fno-asynchronous-unwind-tables -fPIC -pthread -fcolor-diagnostics ' +
      '-fmerge-all-constants -fcrash-diagnostics-dir=../../tools/clang/crashreports -mllvm -instcombine-lower-dbg-declare=0 ' +
      '-ffp-contract=off -m64 -msse3 -Wno-builtin-macro-redefined -D__DATE__= -D__TIME__= -D__TIMESTAMP__= ' +
      '-ffile-compilation-dir=. -no-canonical-prefixes -O2 -fdata-sections -ffunction-sections -fno-unique-section-names ' +
      '-fno-omit-frame-pointer -g0 -fvisibility=hidden -Xclang -fno-pch-timestamp -Werror -Wall -std=c++20 -fno-exceptions ' +
      '-fno-rtti -nostdinc++ -isystem../../buildtools/third_party/libc++/trunk/include -fvisibility-inlines-hidden ' +
      '-c ../../base/at_exit.cc -o obj/base/base/at_exit.o',
    cwd: '/src/chromium/src/out/Default',
    expect: { object: 'obj/base/base/at_exit.o', depFile: 'obj/base/base/at_exit.o.d', outputs: ['obj/base/base/at_exit.o', 'obj/base/base/at_exit.o.d'] },
  },
  {
    name: 'GN/Chromium with the find-bad-constructs clang plugin',
    cmd:
      '../../third_party/llvm-build/Release+Asserts/bin/clang++ -MMD -MF obj/base/base/at_exit.o.d -I../.. -Igen ' +
      '-Xclang -add-plugin -Xclang find-bad-constructs -Xclang -plugin-arg-find-bad-constructs -Xclang raw-ref-template-as-trivial-member ' +
      '-std=c++20 -c ../../base/at_exit.cc -o obj/base/base/at_exit.o',
    cwd: '/src/chromium/src/out/Default',
    expect: { reason: 'plugin' },
  },
  {
    name: 'Debian package build with a versioned, target-prefixed driver',
    cmd: 'x86_64-linux-gnu-gcc-12 -g -O2 -ffile-prefix-map=/build/pkg-1.0=. -fstack-protector-strong -Wformat -Werror=format-security -Wdate-time -D_FORTIFY_SOURCE=2 -c foo.c -o foo.o',
    expect: { object: 'foo.o', outputs: ['foo.o'] },
  },
  {
    name: 'Debian hardening specs file is read but never listed by -M',
    cmd: 'gcc -g -O2 -specs=/usr/share/dpkg/pie-compile.specs -c foo.c -o foo.o',
    expect: { reason: 'reads-unlisted-file' },
  },
  {
    name: 'setuptools C extension',
    cmd: 'x86_64-linux-gnu-gcc -Wno-unused-result -Wsign-compare -DNDEBUG -g -fwrapv -O2 -Wall -g -fstack-protector-strong -Wformat -Werror=format-security -g -fwrapv -O2 -fPIC -I/usr/include/python3.11 -c src/mod.c -o build/temp.linux-x86_64-cpython-311/src/mod.o',
    expect: { object: 'build/temp.linux-x86_64-cpython-311/src/mod.o', outputs: ['build/temp.linux-x86_64-cpython-311/src/mod.o'] },
  },
  {
    name: 'plain make: cc -c without -o writes the basename .o in the cwd',
    cmd: 'cc -O2 -Wall -c src/util.c',
    expect: { object: 'util.o', outputs: ['util.o'] },
  },

  // ── ccache and icecream ──────────────────────────────────────────────────────────────
  {
    name: 'ccache preprocessor run (-E) stays local',
    cmd: 'gcc -E -DHAVE_CONFIG_H -I. -g -O2 foo.c',
    expect: { reason: 'preprocess-only' },
  },
  {
    name: 'ccache depend mode compile: -MD -MF with -fdiagnostics-color',
    cmd: 'gcc -DHAVE_CONFIG_H -I. -g -O2 -fdiagnostics-color -MD -MF foo.d -c foo.c -o foo.o',
    expect: { object: 'foo.o', depFile: 'foo.d', outputs: ['foo.o', 'foo.d'] },
  },
  {
    name: 'icecream remote-style compile of preprocessed stdin',
    cmd: 'gcc -fpreprocessed -x c -c - -o /tmp/icecc-obj.o',
    expect: { reason: 'stdin-input' },
  },
  {
    name: 'ccache second pass on a preprocessed .i file',
    cmd: 'gcc -c -o foo.o foo.i',
    expect: { reason: 'unsupported-language' },
  },

  // ── Everything else that must stay local ─────────────────────────────────────────────
  { name: '-march=native', cmd: 'gcc -march=native -O3 -c bench.c -o bench.o', expect: { reason: 'native-cpu' } },
  { name: '-mcpu=native (clang)', cmd: 'clang -mcpu=native -O3 -c bench.c -o bench.o', expect: { reason: 'native-cpu' } },
  { name: '--coverage', cmd: 'gcc --coverage -O0 -g -c -o foo.o foo.c', expect: { reason: 'coverage' } },
  { name: 'clang source-based coverage', cmd: 'clang -fprofile-instr-generate -fcoverage-mapping -c foo.c -o foo.o', expect: { reason: 'profiling' } },
  { name: '-fprofile-use reads .gcda files', cmd: 'gcc -fprofile-use=/src/prof -fprofile-correction -O2 -c foo.c -o foo.o', expect: { reason: 'profiling' } },
  { name: 'clang sample profile', cmd: 'clang -O2 -fprofile-sample-use=code.prof -c foo.c -o foo.o', expect: { reason: 'profiling' } },
  { name: '-save-temps', cmd: 'gcc -save-temps=obj -O2 -c foo.c -o obj/foo.o', expect: { reason: 'save-temps' } },
  { name: '-fdump-tree-all writes dumps', cmd: 'gcc -O2 -fdump-tree-all -c foo.c -o foo.o', expect: { reason: 'writes-extra-output' } },
  { name: 'clang -ftime-trace writes JSON', cmd: 'clang++ -ftime-trace -O2 -c foo.cpp -o foo.o', expect: { reason: 'writes-extra-output' } },
  { name: 'clang -MJ writes a compilation database fragment', cmd: 'clang -MJ foo.o.json -c foo.c -o foo.o', expect: { reason: 'writes-extra-output' } },
  { name: 'gas listing through -Wa,-adhln=', cmd: 'gcc -g -Wa,-adhln=foo.lst -c foo.c -o foo.o', expect: { reason: 'writes-extra-output' } },
  { name: 'gas include path through -Wa,-I', cmd: 'gcc -Wa,-I,asminc -c start.S -o start.o', expect: { reason: 'reads-unlisted-file' } },
  { name: 'sanitizer ignore list', cmd: 'clang -fsanitize=undefined -fsanitize-ignorelist=ubsan.ignore -c foo.c -o foo.o', expect: { reason: 'reads-unlisted-file' } },
  { name: '-B changes where cc1 and as come from', cmd: 'gcc -B/opt/binutils/bin/ -c foo.c -o foo.o', expect: { reason: 'reads-unlisted-file' } },
  { name: 'a clang plugin through -Xclang -load', cmd: 'clang -Xclang -load -Xclang ./libcheck.so -Xclang -add-plugin -Xclang check -c foo.c -o foo.o', expect: { reason: 'plugin' } },
  { name: 'two sources', cmd: 'gcc -c a.c b.c', expect: { reason: 'multiple-sources' } },
  { name: '-c with nothing to compile', cmd: 'gcc -c -O2', expect: { reason: 'no-source' } },
  { name: 'preprocessor defines from stdin', cmd: 'gcc -E -dM -x c -', expect: { reason: 'preprocess-only' } },
  { name: '-x c - compiles stdin', cmd: 'gcc -x c -c - -o stdin.o', expect: { reason: 'stdin-input' } },
  { name: '-fsyntax-only', cmd: 'clang++ -fsyntax-only -std=c++20 foo.cpp', expect: { reason: 'syntax-only' } },
  { name: '-MM lists dependencies only', cmd: 'gcc -MM -I include src/foo.c', expect: { reason: 'dependencies-only' } },
  { name: 'plain assembler .s', cmd: 'gcc -c start.s -o start.o', expect: { reason: 'unsupported-language' } },
  { name: '-x with a language we do not handle', cmd: 'gcc -x f95 -c mod.f -o mod.o', expect: { reason: 'unsupported-language' } },
  { name: 'clang -include finds foo.h.pch', cmd: 'clang -include pch.h -c foo.c -o foo.o', files: ['pch.h.pch'], expect: { reason: 'precompiled-header' } },
  { name: 'gcc --version', cmd: 'gcc --version', expect: { reason: 'version-query' } },
  { name: 'gcc -v alone', cmd: 'gcc -v', expect: { reason: 'version-query' } },
  { name: 'gcc -dumpmachine', cmd: 'gcc -dumpmachine', expect: { reason: 'version-query' } },
  { name: 'gcc -print-file-name=', cmd: 'gcc -print-file-name=plugin', expect: { reason: 'version-query' } },
  { name: 'clang -print-resource-dir', cmd: 'clang -print-resource-dir', expect: { reason: 'version-query' } },
  { name: 'universal binary: two -arch', cmd: 'clang -arch x86_64 -arch arm64 -c foo.c -o foo.o', expect: { reason: 'multi-arch' } },
  { name: 'DEPENDENCIES_OUTPUT in the environment', cmd: 'gcc -c foo.c -o foo.o', env: { DEPENDENCIES_OUTPUT: 'foo.d' }, expect: { reason: 'dependency-env' } },
  { name: 'SUNPRO_DEPENDENCIES in the environment', cmd: 'gcc -c foo.c -o foo.o', env: { SUNPRO_DEPENDENCIES: 'foo.d foo.o' }, expect: { reason: 'dependency-env' } },
  { name: 'an option nobody knows', cmd: 'clang -Xarch_x86_64 -mavx2 -c foo.c -o foo.o', expect: { reason: 'unknown-option' } },
  { name: 'an object written to /dev/null', cmd: 'gcc -Wall -Werror -c check.c -o /dev/null', expect: { reason: 'special-output' } },
  { name: 'not a compiler: gfortran', cmd: 'gfortran -c mod.f90', expect: { reason: 'not-a-compiler' } },
  { name: 'not a compiler: clang-tidy', cmd: 'clang-tidy foo.c --', expect: { reason: 'not-a-compiler' } },

  // ── Distributable variations ─────────────────────────────────────────────────────────
  { name: '-pg instruments but reads and writes nothing extra', cmd: 'gcc -pg -O2 -c foo.c -o foo.o', expect: { object: 'foo.o', outputs: ['foo.o'] } },
  { name: 'gcc -fstack-usage writes .su beside the object', cmd: 'gcc -fstack-usage -O2 -c foo.c -o obj/foo.o', expect: { object: 'obj/foo.o', outputs: ['obj/foo.o', 'obj/foo.su'] } },
  { name: 'clang -gsplit-dwarf without -g writes no .dwo', cmd: 'clang -gsplit-dwarf -O2 -c foo.c -o foo.o', expect: { object: 'foo.o', outputs: ['foo.o'] } },
  { name: 'gcc -gsplit-dwarf without -g still writes a .dwo', cmd: 'gcc -gsplit-dwarf -O2 -c foo.c', expect: { object: 'foo.o', outputs: ['foo.o', 'foo.dwo'] } },
  { name: 'link options are ignored with -c', cmd: 'gcc -O2 -c foo.c -o foo.o -L/usr/lib -lm -Wl,--as-needed -static -rdynamic -shared', expect: { object: 'foo.o', outputs: ['foo.o'] } },
  { name: 'g++ compiles a .c file as C++', cmd: 'g++ -c foo.c -o foo.o', expect: { object: 'foo.o', outputs: ['foo.o'], language: 'c++' } },
  { name: 'Objective-C++ with clang', cmd: 'clang -fobjc-arc -c view.mm -o view.o', expect: { object: 'view.o', outputs: ['view.o'], language: 'objective-c++' } },
  { name: 'one -arch is just a target', cmd: 'clang -arch x86_64 -c foo.c -o foo.o', expect: { object: 'foo.o', outputs: ['foo.o'] } },
  { name: '-v with a compile is just verbose', cmd: 'gcc -v -c foo.c -o foo.o', expect: { object: 'foo.o', outputs: ['foo.o'] } },
  { name: 'clang ignores -MF without -MD', cmd: 'clang -MF foo.d -c foo.c -o foo.o', expect: { object: 'foo.o', outputs: ['foo.o'] } },
];
