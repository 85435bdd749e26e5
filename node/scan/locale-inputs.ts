// The locale files a compile reads: gcc's diagnostics quote with ‘’ only when its locale's
// charset is UTF-8, and translate when a catalog exists. So the locale data named by the job's
// environment (LC_ALL, LC_CTYPE, LC_MESSAGES, LANG) travels like any input, and a peer that
// lacks the client's locale (or runs a shipped toolchain with nothing of its host) prints
// exactly what the client would.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const LOCALE_DIR = '/usr/lib/locale';
const MESSAGES_DIR = '/usr/share/locale';
/** The compilers' own catalogs: gcc-12.mo, cpplib-12.mo (clang has none). */
const COMPILER_CATALOG = /^(?:gcc|cpplib)(?:-[\d.]+)?\.mo$/;
const CACHE_MS = 60_000;

/** glibc's spelling of a codeset in locale directory names: UTF-8 → utf8. */
function normalisedName(name: string): string {
  const dot = name.indexOf('.');
  if (dot < 0) return name;
  const at = name.indexOf('@', dot);
  const codeset = name.slice(dot + 1, at < 0 ? undefined : at);
  const normal = /^\d+$/.test(codeset.replace(/[^A-Za-z0-9]/g, '')) ? `iso${codeset}` : codeset.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
  return `${name.slice(0, dot)}.${normal}${at < 0 ? '' : name.slice(at)}`;
}

function filesUnder(dir: string, into: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const full = path.join(dir, name);
    const st = statSync(full, { throwIfNoEntry: false });
    if (st?.isDirectory()) filesUnder(full, into);
    else if (st?.isFile()) into.push(full);
  }
}

export class LocaleInputs {
  private readonly cache = new Map<string, { at: number; files: string[] }>();

  /** Absolute paths of the locale files a compile in this environment may read. */
  filesFor(env: Record<string, string>): string[] {
    const names = [...new Set([env.LC_ALL, env.LC_CTYPE, env.LC_MESSAGES, env.LANG])].filter(
      (n): n is string => !!n && n !== 'C' && n !== 'POSIX' && !n.includes('/'),
    );
    if (names.length === 0) return [];
    const key = names.join('\0');
    const cached = this.cache.get(key);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.files;
    const files: string[] = [];
    const archive = path.join(LOCALE_DIR, 'locale-archive');
    if (statSync(archive, { throwIfNoEntry: false })?.isFile()) files.push(archive);
    for (const name of names) {
      for (const dir of new Set([name, normalisedName(name)])) filesUnder(path.join(LOCALE_DIR, dir), files);
      const language = name.split(/[.@]/)[0]!;
      for (const lang of new Set([language, language.split('_')[0]!])) {
        const messages = path.join(MESSAGES_DIR, lang, 'LC_MESSAGES');
        let catalogs: string[] = [];
        try {
          catalogs = readdirSync(messages).filter((f) => COMPILER_CATALOG.test(f));
        } catch {
          // no catalogs for this language
        }
        for (const c of catalogs) files.push(path.join(messages, c));
      }
    }
    const unique = [...new Set(files)];
    this.cache.set(key, { at: Date.now(), files: unique });
    return unique;
  }
}
