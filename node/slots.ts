// A counting semaphore for local slots: the client's open connection is the lease.

export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly total: number) {}

  get inUse(): number {
    return this.used;
  }

  tryAcquire(): boolean {
    if (this.used >= this.total) return false;
    this.used++;
    return true;
  }

  /** Waits for a slot; with 0 slots in total it is granted at once (there is nowhere else to run). */
  acquire(): Promise<void> {
    if (this.total === 0 || this.tryAcquire()) {
      if (this.total === 0) this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.used = Math.max(0, this.used - 1);
  }
}
