// Compiles whose output depends on the time they run: __DATE__ and __TIME__ (unless
// SOURCE_DATE_EPOCH fixes them) and __TIMESTAMP__ (the source's mtime, which no key holds).
// A cached result of such a compile is not what a compile would give now, so it is neither
// looked up nor kept. Each input is searched once per content (inputs are content-addressed).
import { readFileSync } from 'node:fs';
import type { InputFile } from '../../protocol/messages.js';

const CLOCK = /__(DATE|TIME|TIMESTAMP)__/;
const TIMESTAMP = /__TIMESTAMP__/;
const REMEMBERED = 200_000;

type Found = 0 | 1 | 2; // none, __DATE__/__TIME__ only, __TIMESTAMP__

export class ClockMacros {
  private readonly byHash = new Map<string, Found>();

  /** `pathOf`: where the store keeps an input's bytes. */
  constructor(private readonly pathOf: (hash: string) => string) {}

  /** Whether this compile's result depends on when it runs. */
  dependsOnClock(argv: readonly string[], env: Readonly<Record<string, string>>, inputs: readonly InputFile[]): boolean {
    const fixed = env.SOURCE_DATE_EPOCH !== undefined;
    for (const arg of argv) {
      if (TIMESTAMP.test(arg) || (!fixed && CLOCK.test(arg))) return true;
    }
    for (const input of inputs) {
      const found = this.search(input);
      if (found === 2 || (found === 1 && !fixed)) return true;
    }
    return false;
  }

  private search(input: InputFile): Found {
    const known = this.byHash.get(input.hash);
    if (known !== undefined) return known;
    let text: string;
    try {
      text = readFileSync(this.pathOf(input.hash), 'latin1');
    } catch {
      return 2; // unreadable: assume the worst
    }
    const found: Found = TIMESTAMP.test(text) ? 2 : CLOCK.test(text) ? 1 : 0;
    if (this.byHash.size >= REMEMBERED) this.byHash.clear();
    this.byHash.set(input.hash, found);
    return found;
  }
}
