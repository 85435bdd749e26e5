// Real compiler invocations from the big build systems (Kbuild, CMake, autotools, meson),
// written as they print them, with what analysis must decide for each. Used by args.test.ts;
// `cmd` is split like a shell would (quotes only). More in args-invocations-more.ts.
import type { LocalReason } from '../node/args/types.js';

export interface Invocation {
  /** Where it comes from and what it proves. */
  name: string;
  cmd: string;
  /** Default /src/build. */
  cwd?: string;
  env?: Record<string, string>;
  /** Files that exist (ctx.exists), as the analysis will ask for them. */
  files?: string[];
  expect: { reason: LocalReason } | { object: string; depFile?: string; outputs: string[]; language?: string };
}

const KBUILD_INCLUDES =
  '-nostdinc -I./arch/x86/include -I./arch/x86/include/generated -I./include -I./arch/x86/include/uapi ' +
  '-I./arch/x86/include/generated/uapi -I./include/uapi -I./include/generated/uapi ' +
  '-include ./include/linux/compiler-version.h -include ./include/linux/kconfig.h ' +
  '-include ./include/linux/compiler_types.h -D__KERNEL__';
/** What Kbuild (Linux 6.1, x86_64 defconfig) passes to gcc 12 and clang 14; args.test.ts runs them for real. */
export const KBUILD_GCC_CFLAGS =
  '-fmacro-prefix-map=./= -Wall -Wundef -Werror=strict-prototypes -Wno-trigraphs -fno-strict-aliasing ' +
  '-fno-common -fshort-wchar -fno-PIE -Werror=implicit-function-declaration -Werror=implicit-int ' +
  '-Werror=return-type -Wno-format-security -funsigned-char -std=gnu11 -mno-sse -mno-mmx -mno-sse2 ' +
  '-mno-3dnow -mno-avx -fcf-protection=none -m64 -falign-jumps=1 -falign-loops=1 -mno-80387 ' +
  '-mno-fp-ret-in-387 -mpreferred-stack-boundary=3 -mskip-rax-setup -mtune=generic -mno-red-zone ' +
  '-mcmodel=kernel -Wno-sign-compare -fno-asynchronous-unwind-tables -mindirect-branch=thunk-extern ' +
  '-mindirect-branch-register -mindirect-branch-cs-prefix -mfunction-return=thunk-extern -fno-jump-tables ' +
  '-fno-delete-null-pointer-checks -O2 -fno-allow-store-data-races -fstack-protector-strong ' +
  '-fno-omit-frame-pointer -fno-optimize-sibling-calls -ftrivial-auto-var-init=zero ' +
  '-fno-stack-clash-protection -pg -mrecord-mcount -mfentry -DCC_USING_FENTRY -falign-functions=16 ' +
  '-fno-strict-overflow -fstack-check=no -fconserve-stack -Wdeclaration-after-statement ' +
  '-Wvla -Wno-pointer-sign -Wcast-function-type -Wno-array-bounds -Wno-alloc-size-larger-than ' +
  '-Wimplicit-fallthrough=5 -Werror=date-time -Werror=incompatible-pointer-types -Werror=designated-init ' +
  '-Wenum-conversion -Wno-unused-but-set-variable -Wno-unused-const-variable -Wno-packed-not-aligned ' +
  '-Wno-format-overflow -Wno-format-truncation -Wno-stringop-overflow -Wno-restrict -Wno-maybe-uninitialized ' +
  '-Wno-array-bounds -Wno-stringop-overflow -Wno-alloc-size-larger-than -g -gdwarf-5';
export const KBUILD_CLANG_CFLAGS =
  '-fmacro-prefix-map=./= -Wall -Wundef -Werror=strict-prototypes -Wno-trigraphs ' +
  '-fno-strict-aliasing -fno-common -fshort-wchar -fno-PIE -Werror=implicit-function-declaration ' +
  '-Werror=implicit-int -Werror=return-type -Wno-format-security -funsigned-char -std=gnu11 ' +
  '--target=x86_64-linux-gnu -fintegrated-as -Werror=unknown-warning-option -Werror=ignored-optimization-argument ' +
  '-Werror=option-ignored -Werror=unused-command-line-argument -mno-sse -mno-mmx -mno-sse2 -mno-3dnow -mno-avx ' +
  '-fcf-protection=none -m64 -mno-80387 -mstack-alignment=8 -mtune=generic -mno-red-zone -mcmodel=kernel ' +
  '-Wno-sign-compare -fno-asynchronous-unwind-tables -mretpoline-external-thunk ' +
  '-fpatchable-function-entry=16,16 -fno-delete-null-pointer-checks -O2 -fstack-protector-strong ' +
  '-ftrivial-auto-var-init=zero -enable-trivial-auto-var-init-zero-knowing-it-will-be-removed-from-clang ' +
  '-fno-stack-clash-protection -pg -mfentry -DCC_USING_NOP_MCOUNT ' +
  '-DCC_USING_FENTRY -falign-functions=16 -fno-strict-overflow -fno-stack-check';
export const KBUILD_AFLAGS = '-D__ASSEMBLY__ -fno-PIE -m64 -Wa,-gdwarf-5 -DCC_USING_FENTRY';
const fork = (cc: string, flags: string, extra = '') =>
  `${cc} -Wp,-MMD,kernel/.fork.o.d ${KBUILD_INCLUDES} ${flags} ${extra} -DKBUILD_MODFILE='"kernel/fork"' ` +
  `-DKBUILD_BASENAME='"fork"' -DKBUILD_MODNAME='"fork"' -D__KBUILD_MODNAME=kmod_fork -c -o kernel/fork.o kernel/fork.c`;
const KERNEL = '/src/linux';

const CMAKE_SCRATCH = '/src/build/CMakeFiles/CMakeScratch/TryCompile-Fj3K2a';
const MESON_TMP = '/src/builddir/meson-private/tmpq1w2e3r4';

export const BUILD_SYSTEM_INVOCATIONS: Invocation[] = [
  // ── Linux Kbuild ─────────────────────────────────────────────────────────────────────
  {
    name: 'Kbuild gcc: kernel/fork.o, the dependency file named by -Wp,-MMD',
    cmd: fork('gcc', KBUILD_GCC_CFLAGS),
    cwd: KERNEL,
    expect: { object: 'kernel/fork.o', depFile: 'kernel/.fork.o.d', outputs: ['kernel/fork.o', 'kernel/.fork.o.d'], language: 'c' },
  },
  {
    name: 'Kbuild clang: kernel/fork.o with --target and -Werror=unused-command-line-argument',
    cmd: fork('clang', KBUILD_CLANG_CFLAGS, '-g -gdwarf-5'),
    cwd: KERNEL,
    expect: { object: 'kernel/fork.o', depFile: 'kernel/.fork.o.d', outputs: ['kernel/fork.o', 'kernel/.fork.o.d'] },
  },
  {
    name: 'Kbuild gcc, CONFIG_DEBUG_INFO_SPLIT: gcc writes kernel/fork.dwo',
    cmd: fork('gcc', KBUILD_GCC_CFLAGS, '-gsplit-dwarf'),
    cwd: KERNEL,
    expect: { object: 'kernel/fork.o', depFile: 'kernel/.fork.o.d', outputs: ['kernel/fork.o', 'kernel/.fork.o.d', 'kernel/fork.dwo'] },
  },
  {
    name: 'Kbuild clang, CONFIG_DEBUG_INFO_SPLIT with -g: clang writes kernel/fork.dwo',
    cmd: fork('clang', KBUILD_CLANG_CFLAGS, '-g -gdwarf-5 -gsplit-dwarf'),
    cwd: KERNEL,
    expect: { object: 'kernel/fork.o', depFile: 'kernel/.fork.o.d', outputs: ['kernel/fork.o', 'kernel/.fork.o.d', 'kernel/fork.dwo'] },
  },
  {
    name: 'Kbuild clang ThinLTO with split DWARF: an LTO object has no .dwo',
    cmd: fork('clang', KBUILD_CLANG_CFLAGS, '-flto=thin -fsplit-lto-unit -fvisibility=hidden -g -gsplit-dwarf'),
    cwd: KERNEL,
    expect: { object: 'kernel/fork.o', depFile: 'kernel/.fork.o.d', outputs: ['kernel/fork.o', 'kernel/.fork.o.d'] },
  },
  {
    name: 'Kbuild module with KASAN: --param takes a separate value',
    cmd:
      `gcc -Wp,-MMD,drivers/net/.dummy.o.d ${KBUILD_INCLUDES} ${KBUILD_GCC_CFLAGS} -fsanitize=kernel-address ` +
      '-fasan-shadow-offset=0xdffffc0000000000 --param asan-globals=1 --param asan-instrumentation-with-call-threshold=10000 ' +
      '--param asan-stack=1 --param asan-instrument-allocas=1 -fsanitize-coverage=trace-pc -DMODULE ' +
      `-DKBUILD_BASENAME='"dummy"' -DKBUILD_MODNAME='"dummy"' -D__KBUILD_MODNAME=kmod_dummy -c -o drivers/net/dummy.o drivers/net/dummy.c`,
    cwd: KERNEL,
    expect: { object: 'drivers/net/dummy.o', depFile: 'drivers/net/.dummy.o.d', outputs: ['drivers/net/dummy.o', 'drivers/net/.dummy.o.d'] },
  },
  {
    name: 'Kbuild .S file: assembler-with-cpp with -Wa,-gdwarf-5',
    cmd: `gcc -Wp,-MMD,arch/x86/entry/.entry_64.o.d ${KBUILD_INCLUDES} ${KBUILD_AFLAGS} -c -o arch/x86/entry/entry_64.o arch/x86/entry/entry_64.S`,
    cwd: KERNEL,
    expect: {
      object: 'arch/x86/entry/entry_64.o',
      depFile: 'arch/x86/entry/.entry_64.o.d',
      outputs: ['arch/x86/entry/entry_64.o', 'arch/x86/entry/.entry_64.o.d'],
      language: 'assembler-with-cpp',
    },
  },
  {
    name: 'Kbuild asm-offsets: -S writes assembly, stays local',
    cmd: `gcc -Wp,-MMD,arch/x86/kernel/.asm-offsets.s.d ${KBUILD_INCLUDES} ${KBUILD_GCC_CFLAGS} -fverbose-asm -DKBUILD_MODFILE='"arch/x86/kernel/asm-offsets"' -S -o arch/x86/kernel/asm-offsets.s arch/x86/kernel/asm-offsets.c`,
    cwd: KERNEL,
    expect: { reason: 'assembly-output' },
  },
  {
    name: 'Kbuild linker script: -E -P preprocessing stays local',
    cmd: `gcc -E -Wp,-MMD,arch/x86/kernel/.vmlinux.lds.d ${KBUILD_INCLUDES} -P -Ux86 -D__ASSEMBLY__ -DLINKER_SCRIPT -o arch/x86/kernel/vmlinux.lds arch/x86/kernel/vmlinux.lds.S`,
    cwd: KERNEL,
    expect: { reason: 'preprocess-only' },
  },
  {
    name: 'Kbuild cc-option probe compiles /dev/null',
    cmd: 'gcc -Werror -D__KERNEL__ -fno-PIE -mno-sse -fzero-call-used-regs=used-gpr -c -x c /dev/null -o .tmp_3861/tmp',
    cwd: KERNEL,
    expect: { reason: 'conftest' },
  },
  {
    name: 'Kbuild as-instr probe assembles stdin',
    cmd: 'gcc -D__ASSEMBLY__ -fno-PIE -m64 -Wa,--fatal-warnings -c -x assembler-with-cpp -o /dev/null -',
    cwd: KERNEL,
    expect: { reason: 'stdin-input' },
  },
  {
    name: 'Kbuild with GCC plugins: -fplugin= loads a plugin',
    cmd: fork(
      'gcc',
      KBUILD_GCC_CFLAGS,
      '-fplugin=./scripts/gcc-plugins/stackleak_plugin.so -fplugin-arg-stackleak_plugin-track-min-size=100',
    ),
    cwd: KERNEL,
    expect: { reason: 'plugin' },
  },
  {
    name: 'Kbuild CONFIG_GCOV_KERNEL: -fprofile-arcs is profiling',
    cmd: fork('gcc', KBUILD_GCC_CFLAGS, '-fprofile-arcs -ftest-coverage -fno-tree-loop-im'),
    cwd: KERNEL,
    expect: { reason: 'profiling' },
  },
  {
    name: 'Kbuild vDSO: -fPIC and -foptimize-sibling-calls are plain codegen',
    cmd:
      `gcc -Wp,-MMD,arch/x86/entry/vdso/.vclock_gettime.o.d ${KBUILD_INCLUDES} ${KBUILD_GCC_CFLAGS} -mcmodel=small -fPIC -O2 ` +
      '-fasynchronous-unwind-tables -m64 -fno-stack-protector -fno-omit-frame-pointer -foptimize-sibling-calls ' +
      '-DDISABLE_BRANCH_PROFILING -DBUILD_VDSO -c -o arch/x86/entry/vdso/vclock_gettime.o arch/x86/entry/vdso/vclock_gettime.c',
    cwd: KERNEL,
    expect: {
      object: 'arch/x86/entry/vdso/vclock_gettime.o',
      depFile: 'arch/x86/entry/vdso/.vclock_gettime.o.d',
      outputs: ['arch/x86/entry/vdso/vclock_gettime.o', 'arch/x86/entry/vdso/.vclock_gettime.o.d'],
    },
  },
  {
    name: 'Kbuild host program (fixdep) is compiled and linked in one step',
    cmd: 'gcc -Wp,-MMD,scripts/basic/.fixdep.d -Wall -Wmissing-prototypes -Wstrict-prototypes -O2 -fomit-frame-pointer -std=gnu11 -I ./scripts/include -o scripts/basic/fixdep scripts/basic/fixdep.c',
    cwd: KERNEL,
    expect: { reason: 'link' },
  },

  // ── CMake (Makefiles and Ninja generators) ───────────────────────────────────────────
  {
    name: 'CMake C++ object: -MD -MT -MF with -o',
    cmd: '/usr/bin/c++ -DFOO -I/src/include -O3 -DNDEBUG -std=gnu++17 -MD -MT CMakeFiles/x.dir/a.cpp.o -MF CMakeFiles/x.dir/a.cpp.o.d -o CMakeFiles/x.dir/a.cpp.o -c /src/a.cpp',
    expect: {
      object: 'CMakeFiles/x.dir/a.cpp.o',
      depFile: 'CMakeFiles/x.dir/a.cpp.o.d',
      outputs: ['CMakeFiles/x.dir/a.cpp.o', 'CMakeFiles/x.dir/a.cpp.o.d'],
      language: 'c++',
    },
  },
  {
    name: 'CMake shared-library C object: -fPIC and -D<target>_EXPORTS',
    cmd: '/usr/bin/cc -Dfoo_EXPORTS -I/src/include -O2 -g -DNDEBUG -fPIC -MD -MT src/CMakeFiles/foo.dir/foo.c.o -MF src/CMakeFiles/foo.dir/foo.c.o.d -o src/CMakeFiles/foo.dir/foo.c.o -c /src/src/foo.c',
    expect: {
      object: 'src/CMakeFiles/foo.dir/foo.c.o',
      depFile: 'src/CMakeFiles/foo.dir/foo.c.o.d',
      outputs: ['src/CMakeFiles/foo.dir/foo.c.o', 'src/CMakeFiles/foo.dir/foo.c.o.d'],
      language: 'c',
    },
  },
  {
    name: 'CMake with clang++ and -isystem for dependencies',
    cmd: '/usr/bin/clang++ -DFMT_HEADER_ONLY -I/src/include -isystem /src/build/_deps/fmt-src/include -g -std=gnu++20 -fcolor-diagnostics -Wall -Wextra -MD -MT CMakeFiles/app.dir/src/main.cpp.o -MF CMakeFiles/app.dir/src/main.cpp.o.d -o CMakeFiles/app.dir/src/main.cpp.o -c /src/src/main.cpp',
    expect: {
      object: 'CMakeFiles/app.dir/src/main.cpp.o',
      depFile: 'CMakeFiles/app.dir/src/main.cpp.o.d',
      outputs: ['CMakeFiles/app.dir/src/main.cpp.o', 'CMakeFiles/app.dir/src/main.cpp.o.d'],
    },
  },
  {
    name: 'CMake ASM language on a .S file',
    cmd: '/usr/bin/cc -DBOARD_X -I/src/include -O2 -MD -MT CMakeFiles/fw.dir/start.S.o -MF CMakeFiles/fw.dir/start.S.o.d -o CMakeFiles/fw.dir/start.S.o -c /src/start.S',
    expect: {
      object: 'CMakeFiles/fw.dir/start.S.o',
      depFile: 'CMakeFiles/fw.dir/start.S.o.d',
      outputs: ['CMakeFiles/fw.dir/start.S.o', 'CMakeFiles/fw.dir/start.S.o.d'],
      language: 'assembler-with-cpp',
    },
  },
  {
    name: 'CMake executable link line',
    cmd: '/usr/bin/c++ -O3 -DNDEBUG CMakeFiles/x.dir/a.cpp.o CMakeFiles/x.dir/b.cpp.o -o x -Wl,-rpath,/src/build/lib libfoo.a -lpthread',
    expect: { reason: 'link' },
  },
  {
    name: 'CMake shared library link line',
    cmd: '/usr/bin/cc -fPIC -O2 -g -DNDEBUG -shared -Wl,-soname,libfoo.so.1 -o libfoo.so.1.2.3 src/CMakeFiles/foo.dir/foo.c.o',
    expect: { reason: 'link' },
  },
  {
    name: 'CMake try_compile in CMakeScratch (3.25+)',
    cmd: `/usr/bin/cc -DCMAKE_HAVE_LIBC_PTHREAD -o CMakeFiles/cmTC_1a2b3.dir/src.c.o -c ${CMAKE_SCRATCH}/src.c`,
    cwd: CMAKE_SCRATCH,
    expect: { reason: 'conftest' },
  },
  {
    name: 'CMake compiler ABI detection: the source is in Modules/, the cwd in CMakeScratch',
    cmd: '/usr/bin/cc -v -o CMakeFiles/cmTC_8f4e2.dir/CMakeCCompilerABI.c.o -c /usr/share/cmake-3.25/Modules/CMakeCCompilerABI.c',
    cwd: CMAKE_SCRATCH,
    expect: { reason: 'conftest' },
  },
  {
    name: 'CMake try_compile in CMakeTmp (before 3.24)',
    cmd: '/usr/bin/c++ -std=c++17 -o CMakeFiles/cmTC_5c2d1.dir/src.cxx.o -c /src/build/CMakeFiles/CMakeTmp/src.cxx',
    cwd: '/src/build/CMakeFiles/CMakeTmp',
    expect: { reason: 'conftest' },
  },
  {
    name: 'CMake compiler identification in CompilerIdC',
    cmd: '/usr/bin/cc -c CMakeCCompilerId.c',
    cwd: '/src/build/CMakeFiles/3.25.1/CompilerIdC',
    expect: { reason: 'conftest' },
  },
  {
    name: 'CMake PCH build (gcc): -x c++-header writes a .gch',
    cmd: '/usr/bin/c++ -I/src/include -O2 -std=gnu++17 -Winvalid-pch -x c++-header -include /src/build/CMakeFiles/app.dir/cmake_pch.hxx -MD -MT CMakeFiles/app.dir/cmake_pch.hxx.gch -MF CMakeFiles/app.dir/cmake_pch.hxx.gch.d -o CMakeFiles/app.dir/cmake_pch.hxx.gch -c /src/build/CMakeFiles/app.dir/cmake_pch.hxx.cxx',
    expect: { reason: 'precompiled-header' },
  },
  {
    name: 'CMake PCH use (gcc): -include X with X.gch present',
    cmd: '/usr/bin/c++ -I/src/include -O2 -std=gnu++17 -Winvalid-pch -include /src/build/CMakeFiles/app.dir/cmake_pch.hxx -MD -MT CMakeFiles/app.dir/main.cpp.o -MF CMakeFiles/app.dir/main.cpp.o.d -o CMakeFiles/app.dir/main.cpp.o -c /src/main.cpp',
    files: ['/src/build/CMakeFiles/app.dir/cmake_pch.hxx.gch'],
    expect: { reason: 'precompiled-header' },
  },
  {
    name: 'CMake PCH use (clang): -Xclang -include-pch',
    cmd: '/usr/bin/clang++ -I/src/include -O2 -std=gnu++17 -Winvalid-pch -Xclang -include-pch -Xclang /src/build/CMakeFiles/app.dir/cmake_pch.hxx.pch -Xclang -include -Xclang /src/build/CMakeFiles/app.dir/cmake_pch.hxx -MD -MT CMakeFiles/app.dir/main.cpp.o -MF CMakeFiles/app.dir/main.cpp.o.d -o CMakeFiles/app.dir/main.cpp.o -c /src/main.cpp',
    expect: { reason: 'precompiled-header' },
  },

  // ── autotools and libtool ────────────────────────────────────────────────────────────
  {
    name: 'automake: -MT -MD -MP -MF .deps/foo.Tpo',
    cmd: 'gcc -DHAVE_CONFIG_H -I. -I..  -g -O2 -MT foo.o -MD -MP -MF .deps/foo.Tpo -c -o foo.o foo.c',
    expect: { object: 'foo.o', depFile: '.deps/foo.Tpo', outputs: ['foo.o', '.deps/foo.Tpo'] },
  },
  {
    name: 'automake subdir-objects with a per-target prefix',
    cmd: 'gcc -DHAVE_CONFIG_H -I. -I./src -Wall -g -O2 -MT src/lib/libx_a-util.o -MD -MP -MF src/lib/.deps/libx_a-util.Tpo -c -o src/lib/libx_a-util.o src/lib/util.c',
    expect: { object: 'src/lib/libx_a-util.o', depFile: 'src/lib/.deps/libx_a-util.Tpo', outputs: ['src/lib/libx_a-util.o', 'src/lib/.deps/libx_a-util.Tpo'] },
  },
  {
    name: 'libtool PIC object: -fPIC -DPIC -o .libs/foo.o after the source',
    cmd: 'gcc -DHAVE_CONFIG_H -I. -I.. -g -O2 -MT foo.lo -MD -MP -MF .deps/foo.Tpo -c foo.c  -fPIC -DPIC -o .libs/foo.o',
    expect: { object: '.libs/foo.o', depFile: '.deps/foo.Tpo', outputs: ['.libs/foo.o', '.deps/foo.Tpo'] },
  },
  {
    name: 'libtool static object beside it',
    cmd: 'gcc -DHAVE_CONFIG_H -I. -I.. -g -O2 -MT foo.lo -MD -MP -MF .deps/foo.Tpo -c foo.c -o foo.o',
    expect: { object: 'foo.o', depFile: '.deps/foo.Tpo', outputs: ['foo.o', '.deps/foo.Tpo'] },
  },
  {
    name: 'autoconf conftest compile',
    cmd: 'gcc -c -g -O2  conftest.c',
    expect: { reason: 'conftest' },
  },
  {
    name: 'autoconf conftest link',
    cmd: 'gcc -o conftest -g -O2   conftest.c  -lm',
    expect: { reason: 'conftest' },
  },
  {
    name: 'autoconf CPP check',
    cmd: 'gcc -E  conftest.c',
    expect: { reason: 'conftest' },
  },
  {
    name: 'automake program link',
    cmd: 'gcc  -g -O2   -o prog prog.o util.o -lz',
    expect: { reason: 'link' },
  },
  {
    name: 'libtool shared library link',
    cmd: 'gcc -shared  -fPIC -DPIC  .libs/foo.o   -Wl,-soname -Wl,libfoo.so.0 -o .libs/libfoo.so.0.0.0',
    expect: { reason: 'link' },
  },
  {
    name: 'old depcomp (depmode=gcc) runs -M alone',
    cmd: 'gcc -M -DHAVE_CONFIG_H -I. -I.. foo.c',
    expect: { reason: 'dependencies-only' },
  },

  // ── meson ────────────────────────────────────────────────────────────────────────────
  {
    name: 'meson C object: -MD -MQ -MF, source relative to the build dir',
    cmd: 'cc -Ilib.a.p -I. -I.. -fdiagnostics-color=always -D_FILE_OFFSET_BITS=64 -Wall -Winvalid-pch -O0 -g -fPIC -MD -MQ lib.a.p/a.c.o -MF lib.a.p/a.c.o.d -o lib.a.p/a.c.o -c ../a.c',
    cwd: '/src/builddir',
    expect: { object: 'lib.a.p/a.c.o', depFile: 'lib.a.p/a.c.o.d', outputs: ['lib.a.p/a.c.o', 'lib.a.p/a.c.o.d'] },
  },
  {
    name: 'meson C++ object',
    cmd: 'c++ -Iapp.p -I. -I.. -fdiagnostics-color=always -D_GLIBCXX_ASSERTIONS=1 -D_FILE_OFFSET_BITS=64 -Wall -Winvalid-pch -Wnon-virtual-dtor -std=c++17 -O0 -g -MD -MQ app.p/main.cpp.o -MF app.p/main.cpp.o.d -o app.p/main.cpp.o -c ../main.cpp',
    cwd: '/src/builddir',
    expect: { object: 'app.p/main.cpp.o', depFile: 'app.p/main.cpp.o.d', outputs: ['app.p/main.cpp.o', 'app.p/main.cpp.o.d'], language: 'c++' },
  },
  {
    name: 'meson PCH build: g++ compiles a .h into a .gch',
    cmd: 'c++ -Iapp.p -I. -I.. -fdiagnostics-color=always -Wall -Winvalid-pch -std=c++17 -O0 -g -MD -MQ app.p/app_pch.h.gch -MF app.p/app_pch.h.gch.d -o app.p/app_pch.h.gch -c ../pch/app_pch.h',
    cwd: '/src/builddir',
    expect: { reason: 'precompiled-header' },
  },
  {
    name: 'meson PCH use: gcc finds -include app_pch.h as .gch in the -I dir',
    cmd: 'c++ -Iapp.p -I. -I.. -fdiagnostics-color=always -Wall -Winvalid-pch -std=c++17 -O0 -g -include app_pch.h -MD -MQ app.p/main.cpp.o -MF app.p/main.cpp.o.d -o app.p/main.cpp.o -c ../main.cpp',
    cwd: '/src/builddir',
    files: ['app.p/app_pch.h.gch'],
    expect: { reason: 'precompiled-header' },
  },
  {
    name: 'meson sanity check in meson-private',
    cmd: 'cc sanitycheckc.c -o sanitycheckc.exe -D_FILE_OFFSET_BITS=64',
    cwd: '/src/builddir/meson-private',
    expect: { reason: 'conftest' },
  },
  {
    name: 'meson compiler check in a meson-private temp dir',
    cmd: `cc ${MESON_TMP}/testfile.c -o ${MESON_TMP}/output.obj -c -D_FILE_OFFSET_BITS=64 -O0 -std=gnu11`,
    cwd: MESON_TMP,
    expect: { reason: 'conftest' },
  },

];
