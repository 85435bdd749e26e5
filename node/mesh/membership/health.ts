// How much this agent trusts its own judgement (Lifeguard's local health multiplier), and how
// long a probe may take (from measured round trips, not a fixed deadline).
//
// A member whose cores are busy answers late, and so does one whose own event loop is late:
// before calling anyone dead, an agent that itself fires timers late, misses acks, or has to
// refute suspicions of itself waits longer (score 0..MAX_SCORE, every timeout × (1 + score)).

const MAX_SCORE = 8;
const MIN_PROBE_MS = 500;
const MAX_PROBE_MS = 8_000;
/** Probe round trips remembered (dial included when a probe needed a new connection). */
const SAMPLES = 64;

export class LocalHealth {
  private score_ = 0;
  private readonly samples: number[] = [];

  get score(): number {
    return this.score_;
  }

  get multiplier(): number {
    return 1 + this.score_;
  }

  /** A probe was answered (directly or through others). */
  probeAnswered(ms: number): void {
    this.samples.push(ms);
    if (this.samples.length > SAMPLES) this.samples.shift();
    this.lower();
  }

  /** A probe got no ack, and fewer nacks came back than helpers were asked: we may be the slow one. */
  missedNacks(): void {
    this.raise();
  }

  /** Someone suspected us while we were alive. */
  refuted(): void {
    this.raise();
  }

  /** A timer fired this late (ms): our own event loop is behind. */
  timerLate(ms: number): void {
    if (ms > 250) this.raise();
  }

  /** How long to wait for a direct probe: 4 × the 95th percentile of recent round trips, × health. */
  probeTimeoutMs(): number {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const p95 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]! : 250;
    return Math.round(Math.min(MAX_PROBE_MS, Math.max(MIN_PROBE_MS, 4 * p95)) * this.multiplier);
  }

  private raise(): void {
    this.score_ = Math.min(MAX_SCORE, this.score_ + 1);
  }

  private lower(): void {
    this.score_ = Math.max(0, this.score_ - 1);
  }
}
