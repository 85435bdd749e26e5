// What the scheduler knows of every member's load: the last report each sent on its report
// stream. A member whose stream ended counts as busy until it reports again or leaves.
import type { LoadReport, LoadRow } from '../../protocol/swim-messages.js';

export class LoadTable {
  private readonly table = new Map<string, LoadRow & { gone?: boolean }>();

  set(peerId: string, report: LoadReport): void {
    this.table.set(peerId, { ...report, peerId, at: Date.now() });
  }

  /** Its report stream ended: it may be gone, or switching schedulers. */
  gone(peerId: string): void {
    const row = this.table.get(peerId);
    if (row) row.gone = true;
  }

  delete(peerId: string): void {
    this.table.delete(peerId);
  }

  get(peerId: string): (LoadRow & { gone?: boolean }) | undefined {
    return this.table.get(peerId);
  }

  /** Rows of members whose streams are open. */
  rows(): LoadRow[] {
    return [...this.table.values()].filter((r) => !r.gone).map(({ gone: _gone, ...row }) => row);
  }

  clear(): void {
    this.table.clear();
  }
}
