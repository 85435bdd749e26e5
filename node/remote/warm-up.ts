// Warming a far peer: the store files this client's recent jobs used most are sent to a far
// peer in one stream as soon as it takes its first job, so the jobs that follow find their
// headers there instead of asking for them one job at a time over a slow link. Jobs that need
// a file the warm-up is sending wait for that transfer (the peer's intake makes one per file).
import type { Logger } from '../log.js';
import type { MeshNode } from '../mesh/node.js';
import { FramedStream } from '../mesh/framed-stream.js';
import { MESH_JOB_LIMITS, parseMessage, PeerToWarmer } from '../../protocol/messages.js';
import type { Store } from '../store.js';
import { sendBlobs } from './job-client.js';
import { WARM_PROTOCOL } from './job-server.js';

/** Files remembered; past this the older half is forgotten. */
const REMEMBERED = 50_000;
/** What one warm-up sends at most. */
const MAX_FILES = 5_000;
const MAX_BYTES = 64 * 1024 * 1024;
/** A file used by fewer recent jobs than this is not worth sending ahead. */
const MIN_USES = 2;

export interface WarmUpOptions {
  node: () => MeshNode | undefined;
  store: Store;
  log: Logger;
  quality: number;
}

/** A peer is warmed again with what became hot since, after this many of its jobs. */
const REWARM_EVERY_JOBS = 25;

interface PeerWarmth {
  offered: Set<string>;
  inFlight: boolean;
  jobsSince: number;
}

export class WarmUp {
  private readonly uses = new Map<string, { count: number; size: number }>();
  private readonly peers = new Map<string, PeerWarmth>();

  constructor(private readonly options: WarmUpOptions) {}

  /** A job's inputs (those the store holds): what a far peer will probably need too. */
  noteJob(inputs: { hash: string; size: number }[]): void {
    for (const { hash, size } of inputs) {
      const known = this.uses.get(hash);
      if (known) known.count++;
      else this.uses.set(hash, { count: 1, size });
    }
    if (this.uses.size > REMEMBERED) {
      let drop = this.uses.size - REMEMBERED / 2;
      for (const key of this.uses.keys()) {
        if (drop-- <= 0) break;
        this.uses.delete(key);
      }
    }
  }

  /** A job goes to a far peer: warm it (in the background) with the hot files it was not
   *  offered yet, at its first job and again every few jobs as more become hot. */
  warm(peer: string): void {
    let state = this.peers.get(peer);
    if (!state) this.peers.set(peer, (state = { offered: new Set(), inFlight: false, jobsSince: REWARM_EVERY_JOBS - 1 }));
    // Jobs count while a warm-up is on its way too: when it ends, the next may be due.
    state.jobsSince++;
    this.maybeSend(peer, state);
  }

  private maybeSend(peer: string, state: PeerWarmth): void {
    const node = this.options.node();
    if (!node || state.inFlight || state.jobsSince < REWARM_EVERY_JOBS || this.peers.get(peer) !== state) return;
    const offered = state.offered;
    const files = [...this.uses.entries()]
      .filter(([hash, u]) => u.count >= MIN_USES && !offered.has(hash) && this.options.store.has(hash))
      .sort((a, b) => b[1].count - a[1].count);
    const chosen: [string, number][] = [];
    let bytes = 0;
    for (const [hash, u] of files) {
      if (chosen.length >= MAX_FILES || bytes + u.size > MAX_BYTES) break;
      chosen.push([hash, u.size]);
      bytes += u.size;
    }
    if (chosen.length === 0) {
      state.jobsSince = REWARM_EVERY_JOBS - 5; // nothing hot yet: look again a few jobs later
      return;
    }
    state.jobsSince = 0;
    state.inFlight = true;
    for (const [hash] of chosen) offered.add(hash);
    void this.send(node, peer, chosen, bytes).finally(() => {
      state.inFlight = false;
      this.maybeSend(peer, state);
    });
  }

  forget(peer: string): void {
    this.peers.delete(peer);
  }

  private async send(node: MeshNode, peer: string, files: [string, number][], bytes: number): Promise<void> {
    const { store, log, quality } = this.options;
    const hashes = files.map(([hash]) => hash);
    let framed: FramedStream | undefined;
    try {
      store.pin(hashes);
    } catch {
      return; // evicted meanwhile: the jobs will send what they need
    }
    try {
      framed = new FramedStream(await node.openStream(peer, WARM_PROTOCOL, { signal: AbortSignal.timeout(10_000) }), MESH_JOB_LIMITS.frameBytes);
      await framed.send({ t: 'warm', files });
      const offered = new Set(hashes);
      let sent = 0;
      for (;;) {
        const message = parseMessage(PeerToWarmer, await framed.receive(120_000));
        if (message.t === 'warmed') break;
        for (const hash of message.hashes) {
          if (!offered.has(hash)) throw new Error(`the peer asked for ${hash.slice(0, 12)}, which was not offered`);
        }
        await sendBlobs(framed, store, message.hashes, quality);
        sent += message.hashes.length;
      }
      log.info({ peer, offered: files.length, sent, bytes }, 'warmed a far peer');
    } catch (err) {
      log.debug({ peer, err: (err as Error).message }, 'a warm-up failed (the jobs send what they need)');
    } finally {
      store.unpin(hashes);
      await framed?.close();
    }
  }
}
