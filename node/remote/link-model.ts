// What a job to each peer costs on top of its compile, as this client measured it: the time of
// a remote attempt less the compile time the peer reports (round trips, the inputs the peer
// lacked, the outputs, its job root). A LAN peer costs a few ms, a peer behind 100 ms and a
// home uplink hundreds: the scheduler weighs that against waiting for a nearer slot.
const SMOOTHING = 0.3;
/** Peers cheaper than this are near: the scheduler's own round-trip times do for them. */
export const FAR_MS = 20;
const MAX_REPORTED = 64;

export class LinkModel {
  private readonly overheadMs = new Map<string, number>();

  /** A remote attempt on `peer` took `attemptMs`, of which the peer compiled `compileMs`. */
  observe(peer: string, attemptMs: number, compileMs: number): void {
    const overhead = Math.max(0, attemptMs - compileMs);
    const known = this.overheadMs.get(peer);
    this.overheadMs.set(peer, known === undefined ? overhead : known * (1 - SMOOTHING) + overhead * SMOOTHING);
  }

  /** Expected overhead of a job on `peer`: measured, or from its round-trip time until then
   *  (a job takes about four: offer, missing files, result, outputs). */
  estimate(peer: string, rttMs: number | undefined): number {
    return this.overheadMs.get(peer) ?? 4 * (rttMs ?? 0.25);
  }

  /** Whether the link to a peer is slow enough that harder compression pays (by its
   *  round-trip time: transfers to a near peer under load can look slow too). */
  isFar(rttMs: number | undefined): boolean {
    return (rttMs ?? 0) >= FAR_MS;
  }

  /** The far peers' overheads, for a placement request (near ones are left out: small). */
  far(peers: { peerId: string; rttMs?: number }[]): Record<string, number> {
    const far: Record<string, number> = {};
    let n = 0;
    for (const p of peers) {
      const ms = this.estimate(p.peerId, p.rttMs);
      if (ms < FAR_MS) continue;
      far[p.peerId] = Math.round(ms);
      if (++n >= MAX_REPORTED) break;
    }
    return far;
  }

  forget(peer: string): void {
    this.overheadMs.delete(peer);
  }
}
