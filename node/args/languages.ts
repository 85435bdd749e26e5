// Languages: the -x names and source extensions gcc and clang know, and what each means for
// distribution (a source we can ship, a header that becomes a precompiled header, or not ours).

export type SourceLanguage = 'c' | 'c++' | 'objective-c' | 'objective-c++' | 'assembler-with-cpp';

/** What a language (from -x or a file extension) means for distribution. */
export type LanguageClass =
  | { kind: 'source'; language: SourceLanguage }
  | { kind: 'header' } //         compiling it writes a precompiled header
  | { kind: 'unsupported'; why: string };

const source = (language: SourceLanguage): LanguageClass => ({ kind: 'source', language });
const header: LanguageClass = { kind: 'header' };
const preprocessed: LanguageClass = { kind: 'unsupported', why: 'preprocessed input: the -M scan lists nothing' };
const plainAssembler: LanguageClass = { kind: 'unsupported', why: 'plain assembler: the -M scan lists nothing, .include is unseen' };

/** -x names. Anything else (f95, go, cuda, …) is unsupported. */
export const X_LANGUAGES: Record<string, LanguageClass> = {
  c: source('c'),
  'c++': source('c++'),
  'objective-c': source('objective-c'),
  'objective-c++': source('objective-c++'),
  'assembler-with-cpp': source('assembler-with-cpp'),
  'c-header': header,
  'c++-header': header,
  'c++-system-header': header,
  'c++-user-header': header,
  'objective-c-header': header,
  'objective-c++-header': header,
  'cpp-output': preprocessed,
  'c++-cpp-output': preprocessed,
  'objective-c-cpp-output': preprocessed,
  'objective-c++-cpp-output': preprocessed,
  assembler: plainAssembler,
};

/** Source extensions as gcc reads them; a C++ driver (g++, clang++) reads C ones as C++. */
export const EXTENSIONS: Record<string, { c: string; cxx: string }> = {
  c: { c: 'c', cxx: 'c++' },
  h: { c: 'c-header', cxx: 'c++-header' },
  i: { c: 'cpp-output', cxx: 'c++-cpp-output' },
  ...same(['cc', 'cp', 'cxx', 'cpp', 'CPP', 'c++', 'C'], 'c++'),
  ...same(['hh', 'H', 'hp', 'hxx', 'hpp', 'HPP', 'h++', 'tcc'], 'c++-header'),
  ...same(['ii'], 'c++-cpp-output'),
  ...same(['m'], 'objective-c'),
  ...same(['mm', 'M'], 'objective-c++'),
  ...same(['mi'], 'objective-c-cpp-output'),
  ...same(['mii'], 'objective-c++-cpp-output'),
  ...same(['S', 'sx'], 'assembler-with-cpp'),
  ...same(['s'], 'assembler'),
  ...same(['f', 'for', 'ftn', 'F', 'FOR', 'fpp', 'FPP', 'FTN', 'f90', 'f95', 'f03', 'f08', 'F90', 'F95', 'F03', 'F08'], 'f95'),
  ...same(['go', 'd', 'di', 'dd', 'ads', 'adb', 'cu', 'cl', 'hip', 'rs', 'mod'], 'other'),
};

function same(exts: string[], language: string): Record<string, { c: string; cxx: string }> {
  return Object.fromEntries(exts.map((e) => [e, { c: language, cxx: language }]));
}
