// A link that dies without a word (a cable pulled, a router gone) shows nothing on TCP for
// minutes: the streams on it (jobs in flight, the scheduler's placements, a toolchain coming)
// would wait until the membership, after its suspicion ran out, declared the member dead.
// When the membership suspects a member this agent holds a connection to, one ping over that
// connection settles it: a member that is only busy answers, and keeps its streams; silence
// closes its connections, which ends every stream on them at once (jobs are retried elsewhere,
// placements made here). Only suspicion starts a check, so an idle mesh pays nothing.
import type { Logger } from '../log.js';
import type { MeshNode } from './node.js';

/** How long a suspect has to answer (as long as the membership's last chance before it declares a member dead). */
export const LINK_CHECK_MS = 5000;

export class LinkCheck {
  private readonly checking = new Set<string>();

  constructor(
    private readonly node: MeshNode,
    private readonly log: Logger,
    private readonly timeoutMs = LINK_CHECK_MS,
  ) {}

  suspected(peerId: string): void {
    if (this.checking.has(peerId) || !this.node.isConnected(peerId)) return;
    this.checking.add(peerId);
    void this.node
      .rtt(peerId, { signal: AbortSignal.timeout(this.timeoutMs) })
      .then(
        () => undefined,
        async () => {
          this.log.warn({ peer: peerId, ms: this.timeoutMs }, 'a suspected member did not answer a ping over its connection: closing it (its jobs go elsewhere)');
          await this.node.hangUp(peerId).catch(() => undefined);
        },
      )
      .finally(() => this.checking.delete(peerId));
  }
}
