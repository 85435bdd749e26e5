// What a job to each peer costs on top of its compile, as this client measured it: the time of
// a remote attempt less the compile time the peer reports (round trips, the inputs the peer
// lacked, the outputs, its job root). A LAN peer costs a few ms, a peer behind 100 ms and a
// home uplink hundreds: the scheduler weighs that against waiting for a nearer slot. The
// least of the recent attempts counts, not their average: an attempt also includes the time
// the job waited for a slot on a busy peer, which says nothing about the link (an average made
// busy LAN peers look far, and the scheduler then left them idle).
const WINDOW = 16;
/** Peers cheaper than this are near: the scheduler's own round-trip times do for them. */
export const FAR_MS = 20;
const MAX_REPORTED = 64;

export class LinkModel {
  private readonly recent = new Map<string, number[]>();

  /** A remote attempt on `peer` took `attemptMs`, of which the peer compiled `compileMs`. */
  observe(peer: string, attemptMs: number, compileMs: number): void {
    const window = this.recent.get(peer) ?? [];
    window.push(Math.max(0, attemptMs - compileMs));
    if (window.length > WINDOW) window.shift();
    this.recent.set(peer, window);
  }

  /** Measured overhead of a job on `peer`, once it ran one (until then the scheduler's own
   *  round-trip time stands for it). */
  estimate(peer: string): number | undefined {
    const window = this.recent.get(peer);
    return window?.length ? Math.min(...window) : undefined;
  }

  /** Whether the link to a peer is slow enough that harder compression pays (by its
   *  round-trip time: transfers to a near peer under load can look slow too). */
  isFar(rttMs: number | undefined): boolean {
    return (rttMs ?? 0) >= FAR_MS;
  }

  /** The far peers' overheads, for a placement request: peers whose round-trip time and
   *  measured overhead both say far (near ones are left out: the scheduler's rtt does). */
  far(peers: { peerId: string; rttMs?: number }[]): Record<string, number> {
    const far: Record<string, number> = {};
    let n = 0;
    for (const p of peers) {
      const ms = this.estimate(p.peerId);
      if (ms === undefined || ms < FAR_MS || !this.isFar(p.rttMs)) continue;
      far[p.peerId] = Math.round(ms);
      if (++n >= MAX_REPORTED) break;
    }
    return far;
  }

  forget(peer: string): void {
    this.recent.delete(peer);
  }
}
