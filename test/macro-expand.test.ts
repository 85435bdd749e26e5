// Computed includes: the names an include operand may expand to, every definition of each
// macro tried. Checked against what gcc itself includes where it matters (include-walk.test.ts).
import { describe, expect, it } from 'vitest';
import { readDirectives } from '../node/scan/directives.js';
import { expandIncludeOperand, type DefinitionsOf } from '../node/scan/macro-expand.js';

function definitions(...lines: string[]): DefinitionsOf {
  const read = readDirectives(lines.join('\n'));
  return (name) => (read.defines.has(name) || read.functions.has(name) ? { objects: read.defines.get(name) ?? [], functions: read.functions.get(name) ?? [] } : undefined);
}

const names = (expression: string, defs: DefinitionsOf) => {
  const expanded = expandIncludeOperand(expression, defs);
  if ('failed' in expanded) throw new Error(expanded.failed);
  return expanded.names.map((n) => (n.quoted ? `"${n.name}"` : `<${n.name}>`)).sort();
};

describe('include operands, macro-expanded', () => {
  it('stringizes an argument expanded first, as __stringify does', () => {
    const defs = definitions('#define __stringify_1(x...) #x', '#define __stringify(x...) __stringify_1(x)', '#define DIR ../../fs/xfs', '#define NAME(f) __stringify(DIR/f.h)');
    expect(names('NAME(xfs_trace)', defs)).toContain('"../../fs/xfs/xfs_trace.h"');
    // next to # the argument is not expanded
    expect(names('__stringify_1(DIR)', defs)).toEqual(['"DIR"']);
  });

  it('pastes, keeps the spacing of <...> names, and takes variadic arguments', () => {
    const defs = definitions('#define CAT(a, b) a ## b', '#define ARCH x86', '#define ARCH_defs "arch.h"', '#define PATHOF(...) <asm/__VA_ARGS__.h>', '#define SPACED <a b.h>');
    // beside ## the arguments are not expanded; the pasted name is, on the rescan
    expect(names('CAT(ARCH, _defs)', defs)).toEqual(['"arch.h"']);
    expect(names('PATHOF(ARCH)', defs)).toEqual(['<asm/ARCH.h>', '<asm/x86.h>']);
    expect(names('SPACED', defs)).toEqual(['<a b.h>']);
  });

  it('tries every definition of a macro, and the macro undefined', () => {
    const defs = definitions('#define TRACE_SYSTEM sched', '#define TRACE_SYSTEM task', '#define HDR(s) <trace/events/s.h>', '#define ONE(x) HDR(x)');
    expect(names('ONE(TRACE_SYSTEM)', defs)).toEqual(['<trace/events/TRACE_SYSTEM.h>', '<trace/events/sched.h>', '<trace/events/task.h>']);
  });

  it('ends on a macro that names itself, and a function-like name without a call stays a name', () => {
    const defs = definitions('#define loop loop', '#define SELF(x) SELF(x) "self.h"', '#define F(x) "f.h"');
    expect(names('loop', defs)).toEqual([]);
    expect(names('F', defs)).toEqual([]);
    expect(names('F(1)', defs)).toEqual(['"f.h"']);
  });

  it('gives up where it cannot bound the names: a name the compiler may predefine, too many alternatives, a bad paste', () => {
    const defs = definitions('#define S_(x) #x', '#define S(x) S_(x)', '#define BAD(a) a ## ##');
    expect(expandIncludeOperand('S(linux/a.h)', defs)).toEqual({ failed: expect.stringMatching(/linux may be predefined/) });
    expect(expandIncludeOperand('__BASE_FILE__', defs)).toEqual({ failed: expect.stringMatching(/predefined/) });
    const many = definitions(...Array.from({ length: 30 }, (_, i) => `#define A a${i}\n#define B b${i}`), '#define J(x, y) <x/y.h>');
    expect(expandIncludeOperand('J(A, B)', many)).toEqual({ failed: expect.stringMatching(/too many/) });
  });
});
