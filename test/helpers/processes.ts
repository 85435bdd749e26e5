// Processes of this machine found by what their command line holds (a marker a test passed as
// an argument): to see what a sandbox left running, from outside it.
import { readdirSync, readFileSync } from 'node:fs';

export function processesMentioning(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`).includes(marker)) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}
