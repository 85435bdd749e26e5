// The file names a computed include (`#include TRACE_INCLUDE(TRACE_INCLUDE_FILE)`) may stand
// for, without running the preprocessor: the operand is macro-expanded as the C standard
// says (per-token hide sets, arguments expanded before substitution unless next to # or ##,
// stringizing, pasting, variadic arguments), except that where a macro has several
// definitions in the files found (whatever #if or #undef surrounds them), every one of them
// is tried, and so is the macro being undefined there. The names are then a superset of
// what the compiler can include, as the walk needs.
//
// What cannot be bounded this way gives up, and the caller asks the compiler: too many
// alternatives, a paste that forms no token, __VA_OPT__, and an identifier that none of the
// files defines but the compiler may predefine (`__FILE__`, `__BASE_FILE__`, and in GNU
// modes `linux`, `unix` and `i386`) left anywhere in an expansion.

export interface FunctionMacro {
  /** Parameter names; a variadic one last as `...` or GNU's `name...`. */
  params: string[];
  body: string;
}

export interface MacroDefinitions {
  /** Object-like bodies, function-like definitions: every one seen. */
  objects: readonly string[];
  functions: readonly FunctionMacro[];
}

export type DefinitionsOf = (name: string) => MacroDefinitions | undefined;

export type HeaderName = { quoted: boolean; name: string };

interface Token {
  kind: 'id' | 'number' | 'string' | 'punct';
  text: string;
  /** Whitespace came before it (kept for stringizing and for <...> names). */
  space: boolean;
  /** Macros that must not expand this token again. */
  hide: readonly string[];
}

const MAX_ALTERNATIVES = 512;
const MAX_STEPS = 20_000;
const MAY_BE_PREDEFINED = /^(?:_[_A-Z]\w*|linux|unix|i386)$/;
const TOKEN = /\s*(?:([A-Za-z_]\w*)|(\.?\d(?:[eEpP][+-]|[\w.])*)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(\.\.\.|##|\S))/y;

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  for (let m = TOKEN.exec(text); m; m = TOKEN.exec(text)) {
    const kind = m[1] !== undefined ? 'id' : m[2] !== undefined ? 'number' : m[3] !== undefined ? 'string' : 'punct';
    const spelled = m[1] ?? m[2] ?? m[3] ?? m[4]!;
    tokens.push({ kind, text: spelled, space: m.index + m[0].length - spelled.length > at, hide: [] });
    at = TOKEN.lastIndex;
  }
  return tokens;
}

class GiveUp extends Error {}

export function expandIncludeOperand(expression: string, definitionsOf: DefinitionsOf): { names: HeaderName[] } | { failed: string } {
  const budget = { steps: 0 };
  let alternatives: Token[][];
  try {
    alternatives = expand(tokenize(expression), definitionsOf, budget);
  } catch (err) {
    if (err instanceof GiveUp) return { failed: `#include ${expression.slice(0, 80)}: ${err.message}` };
    throw err;
  }
  const names = new Map<string, HeaderName>();
  for (const tokens of alternatives) {
    const unknown = tokens.find((t) => t.kind === 'id' && MAY_BE_PREDEFINED.test(t.text) && !definitionsOf(t.text));
    if (unknown) return { failed: `#include ${expression.slice(0, 80)}: ${unknown.text} may be predefined by the compiler` };
    const header = headerName(tokens);
    if (header) names.set(`${header.quoted ? '"' : '<'}${header.name}`, header);
  }
  return { names: [...names.values()] };
}

/** What the compiler takes from an expanded operand: one string literal, or the spellings between < and >. */
function headerName(tokens: Token[]): HeaderName | undefined {
  if (tokens.length === 1 && tokens[0]!.kind === 'string' && tokens[0]!.text.startsWith('"')) return { quoted: true, name: tokens[0]!.text.slice(1, -1) };
  if (tokens.length < 3 || tokens[0]!.text !== '<' || tokens.at(-1)!.text !== '>') return undefined;
  const inner = tokens.slice(1, -1);
  return { quoted: false, name: inner.map((t, i) => (i > 0 && t.space ? ` ${t.text}` : t.text)).join('') };
}

/** Every full expansion of `tokens`, each definition of each macro tried, and the macro left undefined. */
function expand(tokens: Token[], definitionsOf: DefinitionsOf, budget: { steps: number }): Token[][] {
  const done: Token[][] = [];
  const work: { tokens: Token[]; from: number }[] = [{ tokens, from: 0 }];
  while (work.length > 0) {
    if (++budget.steps > MAX_STEPS) throw new GiveUp('too many macro expansions');
    const { tokens: current, from } = work.pop()!;
    const next = nextExpandable(current, from, definitionsOf);
    if (!next) {
      done.push(current);
      if (done.length > MAX_ALTERNATIVES) throw new GiveUp('too many alternatives');
      continue;
    }
    const { at, token, definitions, call } = next;
    // Undefined at this point: the name stays, never to expand again.
    work.push({ tokens: splice(current, at, 1, [{ ...token, hide: [...token.hide, token.text] }]), from: at + 1 });
    for (const body of definitions.objects) {
      const hide = [...token.hide, token.text];
      const replacement = tokenize(body).map((t) => ({ ...t, hide }));
      if (replacement[0]) replacement[0] = { ...replacement[0], space: token.space };
      work.push({ tokens: splice(current, at, 1, pasted(replacement)), from: at });
    }
    if (!call) continue;
    const rparen = current[call.end]!;
    const hide = [...token.hide.filter((name) => rparen.hide.includes(name)), token.text];
    for (const macro of definitions.functions) {
      const args = bindArguments(macro, call.args);
      if (!args) continue;
      for (const replacement of substitute(macro, args, definitionsOf, budget)) {
        const marked = replacement.map((t) => ({ ...t, hide: [...new Set([...t.hide, ...hide])] }));
        if (marked[0]) marked[0] = { ...marked[0], space: token.space };
        work.push({ tokens: splice(current, at, call.end - at + 1, marked), from: at });
      }
    }
  }
  return done;
}

function nextExpandable(tokens: Token[], from: number, definitionsOf: DefinitionsOf) {
  for (let at = from; at < tokens.length; at++) {
    const token = tokens[at]!;
    if (token.kind !== 'id' || token.hide.includes(token.text)) continue;
    const definitions = definitionsOf(token.text);
    if (!definitions) continue;
    const call = definitions.functions.length > 0 && tokens[at + 1]?.text === '(' ? readArguments(tokens, at + 1) : undefined;
    if (definitions.objects.length === 0 && !call) continue;
    return { at, token, definitions, call };
  }
  return undefined;
}

/** The arguments of a call whose `(` is at `open`, split at top-level commas; undefined if it is not closed. */
function readArguments(tokens: Token[], open: number): { args: Token[][]; end: number } | undefined {
  const args: Token[][] = [[]];
  let depth = 0;
  for (let i = open + 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.text === '(') depth++;
    else if (t.text === ')') {
      if (depth === 0) return { args, end: i };
      depth--;
    } else if (t.text === ',' && depth === 0) {
      args.push([]);
      continue;
    }
    args.at(-1)!.push(t);
  }
  return undefined;
}

/** Parameter name → its argument's tokens, or undefined when the count cannot match. */
function bindArguments(macro: FunctionMacro, args: Token[][]): Map<string, Token[]> | undefined {
  const params = macro.params;
  const last = params.at(-1);
  const variadic = last !== undefined && last.endsWith('...');
  const fixed = variadic ? params.length - 1 : params.length;
  const given = args.length === 1 && args[0]!.length === 0 && params.length === 0 ? [] : args;
  if (variadic ? given.length < fixed : given.length !== fixed) {
    // `F()` for a one-parameter macro passes one empty argument.
    if (!(fixed === 1 && !variadic && given.length === 0)) return undefined;
  }
  const bound = new Map<string, Token[]>();
  for (let i = 0; i < fixed; i++) bound.set(params[i]!, given[i] ?? []);
  if (variadic) {
    const rest: Token[] = [];
    given.slice(fixed).forEach((arg, i) => rest.push(...(i > 0 ? [{ kind: 'punct' as const, text: ',', space: false, hide: [] }] : []), ...arg));
    bound.set(last === '...' ? '__VA_ARGS__' : last.slice(0, -3), rest);
  }
  return bound;
}

function substitute(macro: FunctionMacro, args: Map<string, Token[]>, definitionsOf: DefinitionsOf, budget: { steps: number }): Token[][] {
  const body = tokenize(macro.body);
  if (body.some((t) => t.text === '__VA_OPT__')) throw new GiveUp('__VA_OPT__');
  let alternatives: Token[][] = [[]];
  const append = (choices: Token[][]) => {
    const grown: Token[][] = [];
    for (const before of alternatives) for (const choice of choices) grown.push([...before, ...choice]);
    if (grown.length > MAX_ALTERNATIVES) throw new GiveUp('too many alternatives');
    alternatives = grown;
  };
  for (let i = 0; i < body.length; i++) {
    const t = body[i]!;
    const stringized = t.text === '#' ? args.get(body[i + 1]?.text ?? '') : undefined;
    if (stringized) {
      append([[{ kind: 'string', text: stringize(stringized), space: t.space, hide: [] }]]);
      i++;
      continue;
    }
    const arg = t.kind === 'id' ? args.get(t.text) : undefined;
    if (!arg) {
      append([[t]]);
      continue;
    }
    const besidePaste = body[i - 1]?.text === '##' || body[i + 1]?.text === '##';
    const choices = besidePaste ? [arg] : expand(arg, definitionsOf, budget);
    append(choices.map((c) => (c[0] ? [{ ...c[0], space: t.space }, ...c.slice(1)] : c)));
  }
  return alternatives.map(pasted);
}

/** The tokens with every `a ## b` joined into one token (an empty side leaves the other). */
function pasted(tokens: Token[]): Token[] {
  if (!tokens.some((t) => t.text === '##')) return tokens;
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.text !== '##') {
      out.push(t);
      continue;
    }
    // An empty argument beside ## leaves the other side as it is.
    if (out.length === 0 || i + 1 >= tokens.length) continue;
    const left = out.pop()!;
    const right = tokens[++i]!;
    const joined = tokenize(left.text + right.text);
    if (joined.length !== 1) throw new GiveUp(`pasting ${left.text} and ${right.text} gives no token`);
    out.push({ ...joined[0]!, space: left.space, hide: left.hide });
  }
  return out;
}

function stringize(tokens: Token[]): string {
  const text = tokens
    .map((t, i) => {
      const spelled = t.kind === 'string' ? t.text.replace(/[\\"]/g, '\\$&') : t.text;
      return i > 0 && t.space ? ` ${spelled}` : spelled;
    })
    .join('');
  return `"${text}"`;
}

function splice(tokens: Token[], at: number, remove: number, insert: Token[]): Token[] {
  return [...tokens.slice(0, at), ...insert, ...tokens.slice(at + remove)];
}
