// Reads an argument list with a table of option rules: an exact spelling wins, otherwise
// the longest rule name that prefixes the argument and takes a glued value.
import { DRIVER_OPTIONS, type OptionRule, type Tool } from './table.js';
import { TOOL_OPTIONS } from './tool-table.js';

export interface ParsedArg {
  /** The matched rule; none for an input, or for an unknown option when `text` starts with '-'. */
  rule?: OptionRule;
  /** The argument as written (the option itself when its value is separate). */
  text: string;
  value?: string;
  /** The option wants a separate value and none follows. */
  missingValue?: true;
  /** The argv elements it spans, as written. */
  raw: string[];
  /** For -Wa,… and -Wp,…: the forwarded options, read with their tool's table. */
  inner?: ParsedArg[];
}

class OptionTable {
  private readonly exact = new Map<string, OptionRule>();
  private readonly prefixes: OptionRule[];

  constructor(
    rules: readonly OptionRule[],
    private readonly fallback?: OptionTable,
  ) {
    for (const rule of rules) this.exact.set(rule.name, rule);
    this.prefixes = rules
      .filter((r) => r.takes === 'joined' || r.takes === 'either')
      .sort((a, b) => b.name.length - a.name.length);
  }

  /** Reads the argument at `i`; returns it and how many elements it used. */
  read(args: readonly string[], i: number): ParsedArg {
    const text = args[i]!;
    const exact = this.exact.get(text);
    if (exact) {
      if (exact.takes === 'separate' || exact.takes === 'either') {
        const next = args[i + 1];
        if (next === undefined) return { rule: exact, text, missingValue: true, raw: [text] };
        return { rule: exact, text, value: next, raw: [text, next] };
      }
      return { rule: exact, text, value: exact.takes === 'joined' ? '' : undefined, raw: [text] };
    }
    const prefix = text.startsWith('-') ? this.prefixes.find((r) => text.startsWith(r.name)) : undefined;
    if (prefix) return { rule: prefix, text, value: text.slice(prefix.name.length), raw: [text] };
    if (this.fallback) return this.fallback.read(args, i);
    return { text, raw: [text] };
  }

  parse(args: readonly string[]): ParsedArg[] {
    const parsed: ParsedArg[] = [];
    for (let i = 0; i < args.length; ) {
      const arg = this.read(args, i);
      parsed.push(arg);
      i += arg.raw.length;
    }
    return parsed;
  }
}

const driverTable = new OptionTable(DRIVER_OPTIONS);
const toolTables = Object.fromEntries(
  Object.entries(TOOL_OPTIONS).map(([tool, t]) => [tool, new OptionTable(t.rules, t.thenDriver ? driverTable : undefined)]),
) as Record<Tool, OptionTable>;

export interface ParsedCommand {
  /** The driver's arguments, in order; -Wa,/-Wp, carry their forwarded options in `inner`. */
  args: ParsedArg[];
  /** The options given through -Xassembler, -Xpreprocessor and -Xclang, one list per tool:
   *  their values form one stream (`-Xclang -load -Xclang x.so` is `-load x.so`). */
  forwarded: Record<Tool, ParsedArg[]>;
}

export function parseCommand(args: readonly string[]): ParsedCommand {
  const parsed = driverTable.parse(args);
  const streams: Record<Tool, string[]> = { assembler: [], preprocessor: [], 'clang-cc1': [] };
  for (const arg of parsed) {
    const rule = arg.rule;
    if (rule?.kind !== 'forward' || rule.to === undefined || arg.value === undefined) continue;
    if (rule.commas) arg.inner = toolTables[rule.to].parse(arg.value.split(','));
    else streams[rule.to].push(arg.value);
  }
  const forwarded = {
    assembler: toolTables.assembler.parse(streams.assembler),
    preprocessor: toolTables.preprocessor.parse(streams.preprocessor),
    'clang-cc1': toolTables['clang-cc1'].parse(streams['clang-cc1']),
  };
  return { args: parsed, forwarded };
}
