// Reading what `cc -M -v` prints: the make rule of every file the compile reads (stdout)
// and the include search list (stderr).

/** The prerequisites of the first make rule, unescaped the way gcc and clang escape them. */
export function parseMakeRule(text: string): string[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  for (let i = 0; i < joined.length; i++) {
    const c = joined[i]!;
    if (c === '\\' && (joined[i + 1] === ' ' || joined[i + 1] === '#' || joined[i + 1] === '\\')) {
      current += joined[++i];
      inToken = true;
    } else if (c === '$' && joined[i + 1] === '$') {
      current += '$';
      i++;
      inToken = true;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
    } else {
      current += c;
      inToken = true;
    }
  }
  if (inToken) tokens.push(current);
  const colon = tokens.findIndex((t) => t.endsWith(':'));
  if (colon < 0) throw new Error('the scan printed no make rule');
  const first = tokens[colon]!;
  // "target:" as one token, or "target: dep" where the colon ends the token.
  return tokens.slice(colon + 1).filter((t) => t.length > 0 && t !== first);
}

export interface SearchLists {
  /** `#include "..."` only: -iquote directories */
  quoteOnly: string[];
  /** `#include <...>`: -I, -isystem, the system directories, -idirafter */
  bracket: string[];
  /** directories the compiler skipped because they did not exist */
  ignored: string[];
}

/** The include search lists of `-v` (gcc and clang print them alike), as the compiler printed them. */
export function parseSearchLists(stderr: string): SearchLists {
  const lists: SearchLists = { quoteOnly: [], bracket: [], ignored: [] };
  let list: string[] | undefined;
  for (const line of stderr.split('\n')) {
    const skipped = /^ignoring nonexistent directory "(.*)"$/.exec(line);
    if (skipped) lists.ignored.push(skipped[1]!);
    else if (line.startsWith('#include "..." search starts here:')) list = lists.quoteOnly;
    else if (line.startsWith('#include <...> search starts here:')) list = lists.bracket;
    else if (line.startsWith('End of search list.')) list = undefined;
    else if (list && line.startsWith(' ')) list.push(line.trim().replace(/ \(framework directory\)$/, '').replace(/ \(headermap\)$/, ''));
  }
  return lists;
}

/** The quote and bracket include search directories, in order, as the compiler printed them. */
export function parseSearchDirs(stderr: string): string[] {
  const { quoteOnly, bracket } = parseSearchLists(stderr);
  return [...quoteOnly, ...bracket];
}
