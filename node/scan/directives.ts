// The include directives of one file, read as text: every #include, #include_next, #import
// and #embed in the file, whatever #if branch or comment block it sits in. Reading all of
// them (not evaluating conditionals) makes the file set a superset of what the compiler
// opens, which is what a job root needs. A directive whose operand is a macro expression (a
// computed include) is kept with the file's macro definitions, for macro-expand.ts.
import type { FunctionMacro } from './macro-expand.js';

export type DirectiveKind = 'include' | 'include_next' | 'import' | 'embed';

export interface Directive {
  kind: DirectiveKind;
  /** true for "name" (searched from the including file's directory first), false for <name> */
  quoted: boolean;
  name: string;
}

export interface ComputedDirective {
  kind: DirectiveKind;
  /** The operand, a macro expression (`SOME_HEADER`, `TRACE_INCLUDE(TRACE_INCLUDE_FILE)`). */
  expression: string;
}

export interface FileDirectives {
  directives: Directive[];
  /** Directives whose operand is a macro expression: followed through the definitions. */
  computed: ComputedDirective[];
  /** A __has_include of a macro: only the preprocessor can tell. */
  opaque: boolean;
  /** Object-like macro definitions, `#define NAME body` (bodies trimmed). */
  defines: Map<string, string[]>;
  /** Function-like macro definitions, `#define NAME(params) body`. */
  functions: Map<string, FunctionMacro[]>;
  /** The files `__has_include(…)` and `__has_include_next(…)` ask about, on any directive line. */
  probes: Directive[];
}

const DIRECTIVE = /^(?:#|%:)[ \t]*(include_next|include|import|embed)\b(.*)$/;
const DEFINE = /^(?:#|%:)[ \t]*define[ \t]+([A-Za-z_]\w*)(?:[ \t]+(.*))?$/;
const DEFINE_FUNCTION = /^(?:#|%:)[ \t]*define[ \t]+([A-Za-z_]\w*)\(([^)]*)\)(.*)$/;
const SPACE = new Set([0x20, 0x09, 0x0d, 0x0c, 0x0b]);

export function readDirectives(text: string): FileDirectives {
  // Line splices can fall anywhere inside a directive; most files have none.
  const source = text.includes('\\\n') || text.includes('\\\r\n') ? text.replace(/\\\r?\n/g, '') : text;
  const result: FileDirectives = { directives: [], computed: [], opaque: false, defines: new Map(), functions: new Map(), probes: [] };
  for (const line of directiveLines(source)) {
    if (line.includes('__has_include')) readProbes(line, result);
    const definition = DEFINE.exec(line);
    if (definition) {
      const bodies = result.defines.get(definition[1]!);
      if (bodies) bodies.push(withoutComments(definition[2] ?? ''));
      else result.defines.set(definition[1]!, [withoutComments(definition[2] ?? '')]);
      continue;
    }
    const fn = DEFINE_FUNCTION.exec(line);
    if (fn) {
      const macro = { params: functionParams(fn[2]!), body: withoutComments(fn[3]!) };
      const known = result.functions.get(fn[1]!);
      if (known) known.push(macro);
      else result.functions.set(fn[1]!, [macro]);
      continue;
    }
    const match = DIRECTIVE.exec(line);
    if (!match) continue;
    const kind = match[1] as DirectiveKind;
    const operand = match[2]!.replace(/\/\*.*?\*\//g, ' ').trimStart();
    const open = operand[0];
    const close = open === '"' ? '"' : open === '<' ? '>' : undefined;
    const end = close ? operand.indexOf(close, 1) : -1;
    if (close && end > 1) {
      result.directives.push({ kind, quoted: open === '"', name: operand.slice(1, end) });
      continue;
    }
    const rest = withoutComments(operand);
    // Other text is no valid directive (the compiler rejects it) and opens nothing.
    if (/^[A-Za-z_]/.test(rest)) result.computed.push({ kind, expression: rest });
  }
  return result;
}

function withoutComments(text: string): string {
  return text.replace(/\/\*.*?\*\//g, ' ').replace(/\/\/.*$/, '').trim();
}

/** `a, b, ...` → ['a', 'b', '...']; GNU's `rest...` stays one name with its dots. */
export function functionParams(list: string): string[] {
  return list.split(',').map((p) => p.replace(/\s+/g, '')).filter((p) => p !== '');
}

const PROBE = /__has_include(_next)?(?:__)?\s*(\()?\s*(?:"([^"]+)"|<([^>]+)>)?/g;

/** `__has_include("x")` or `(<x>)`; any other operand (a macro) only the compiler can read. */
function readProbes(line: string, into: FileDirectives): void {
  for (const m of line.matchAll(PROBE)) {
    if (!m[2]) continue; // `#ifdef __has_include`: a test for the operator, not a use
    const name = m[3] ?? m[4];
    if (name === undefined) into.opaque = true;
    else into.probes.push({ kind: m[1] ? 'include_next' : 'include', quoted: m[3] !== undefined, name });
  }
}

/** A macro body that names a file: `"name"` or `<name>`. */
export function literalOperand(body: string): { quoted: boolean; name: string } | undefined {
  const m = /^(?:"([^"]+)"|<([^>]+)>)$/.exec(body.trim());
  if (!m) return undefined;
  return m[1] !== undefined ? { quoted: true, name: m[1] } : { quoted: false, name: m[2]! };
}

/**
 * The lines that are preprocessing directives: a # (or %:) first on its line after blanks
 * and comments. Comments and string and character literals are skipped, so that text that
 * merely mentions "#include" is not taken for one.
 */
export function directiveLines(text: string): string[] {
  const lines: string[] = [];
  const n = text.length;
  let lineStart = true;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      lineStart = true;
      i++;
    } else if (SPACE.has(c)) {
      i++;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) {
      const close = text.indexOf('*/', i + 2);
      if (close < 0) break;
      i = close + 2;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2f) {
      const eol = text.indexOf('\n', i);
      if (eol < 0) break;
      i = eol;
    } else if (lineStart && (c === 0x23 || (c === 0x25 && text.charCodeAt(i + 1) === 0x3a))) {
      let eol = text.indexOf('\n', i);
      if (eol < 0) eol = n;
      const line = text.slice(i, eol);
      lines.push(line);
      // A block comment opened on the directive's line and closed on a later one.
      const opened = line.lastIndexOf('/*');
      i = opened >= 0 && line.indexOf('*/', opened + 2) < 0 ? i + opened : eol;
      lineStart = false;
    } else if (c === 0x22 || c === 0x27) {
      lineStart = false;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i += 2;
        else if (d === c) {
          i++;
          break;
        } else if (d === 0x0a) break;
        else i++;
      }
    } else {
      lineStart = false;
      i++;
    }
  }
  return lines;
}
