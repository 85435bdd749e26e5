// Response files (@file) as gcc (libiberty's expandargv/buildargv) and clang (the GNU
// tokenizer) read them, checked against gcc 12 and clang 14:
// - arguments are separated by whitespace; '…' and "…" quote; a backslash escapes the
//   next character everywhere, inside quotes too (so `a\ b` is one argument and a
//   backslash-newline is a newline inside the argument); '' is an empty argument;
//   there are no comments;
// - an @file inside an @file is expanded too, its path relative to the cwd (not to the
//   file that names it);
// - an @file that cannot be read stays in argv literally (the compiler then fails on it);
//   the caller keeps such a job local.

/** Beyond this many expansions gcc gives up ("too many response files"): a file that names itself. */
const MAX_EXPANSIONS = 2000;

export interface Expansion {
  args: string[];
  /** @file arguments left as written because they could not be read. */
  unreadable: string[];
}

/** Expands every @file argument; `read` resolves relative paths against the cwd and throws on failure. */
export function expandResponseFiles(args: readonly string[], read: (path: string) => string): Expansion {
  const out: string[] = [];
  const unreadable: string[] = [];
  const pending = [...args].reverse(); // a stack: nested files expand in place, in order
  let expansions = 0;
  while (pending.length > 0) {
    const arg = pending.pop()!;
    if (!arg.startsWith('@') || arg.length === 1) {
      out.push(arg);
      continue;
    }
    let text: string;
    try {
      if (++expansions > MAX_EXPANSIONS) throw new Error('too many response files');
      text = read(arg.slice(1));
    } catch {
      unreadable.push(arg);
      out.push(arg);
      continue;
    }
    pending.push(...splitResponseFile(text).reverse());
  }
  return { args: out, unreadable };
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r', '\f', '\v']);

/** Splits a response file's text into arguments (libiberty's buildargv). */
export function splitResponseFile(text: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && WHITESPACE.has(text[i]!)) i++;
    if (i >= text.length) break;
    let arg = '';
    let quote: string | undefined;
    for (; i < text.length; i++) {
      const ch = text[i]!;
      if (ch === '\\') {
        if (i + 1 < text.length) arg += text[++i]; // a trailing backslash is dropped
      } else if (quote !== undefined) {
        if (ch === quote) quote = undefined;
        else arg += ch;
      } else if (ch === "'" || ch === '"') {
        quote = ch;
      } else if (WHITESPACE.has(ch)) {
        break;
      } else {
        arg += ch;
      }
    }
    args.push(arg);
  }
  return args;
}
