// Whether other members can dial this agent, and what it does when they cannot.
//
// Each new direct connection is a chance to ask the peer to dial back, on a fresh connection,
// the address it sees us from with our listen port (libp2p's autonat in spirit; its own
// package wants 4 confirmations from 4 different /8 networks and ignores private addresses,
// so a 3-agent mesh or a LAN never decides). Members are authenticated by the mesh key, so one
// answer per peer is believed. An agent some member could not dial back is behind a NAT: it
// takes a circuit relay v2 reservation on a member that is reachable and offers relaying, and
// advertises the relayed address; members it can only reach through that relay upgrade to a
// direct connection as soon as one of them answers on a direct address.
import type { Connection } from '@libp2p/interface';
import { DIALBACK_PROTOCOL, DialbackAnswer, DialbackRequest, MEMBER_LIMITS } from '../../protocol/member-messages.js';
import type { Logger } from '../log.js';
import { FramedStream } from './framed-stream.js';
import type { MeshNode } from './node.js';

const DIALBACK_TIMEOUT_MS = 5_000;
/** Peers asked at most; more answers add little and cost each of them a dial. */
const MAX_PROBES = 4;

export interface ReachabilityOptions {
  node: MeshNode;
  log: Logger;
  /** The state changed (this agent advertises it). */
  onChange: () => void;
}

export type ReachState = 'unknown' | 'reachable' | 'unreachable';

function isCircuit(address: string): boolean {
  return address.includes('/p2p-circuit');
}

/** `/ip4/1.2.3.4/tcp/5/...` → ['ip4', '1.2.3.4']; undefined for anything that is not IP + TCP. */
function ipOf(address: string): { family: 'ip4' | 'ip6'; host: string } | undefined {
  const match = /^\/(ip4|ip6)\/([^/]+)\/tcp\/\d+/.exec(address);
  return match ? { family: match[1] as 'ip4' | 'ip6', host: match[2]! } : undefined;
}

export class Reachability {
  private readonly asked = new Set<string>();
  private readonly answers = new Map<string, boolean>();
  /** Addresses some member reached us on, as it saw them (a port forward shows up here). */
  readonly confirmed = new Set<string>();
  private relayedOn?: string;
  private reserving = false;

  constructor(private readonly options: ReachabilityOptions) {}

  get state(): ReachState {
    const values = [...this.answers.values()];
    if (values.length === 0) return 'unknown';
    return values.every(Boolean) ? 'reachable' : 'unreachable';
  }

  /** The relay this agent listens on, if it took a reservation. */
  get relay(): string | undefined {
    return this.relayedOn;
  }

  async start(): Promise<void> {
    const node = this.options.node.libp2p;
    await node.handle(DIALBACK_PROTOCOL, (stream, connection) => void this.answer(new FramedStream(stream, 4096), connection), { runOnLimitedConnection: true });
    node.addEventListener('connection:open', (evt) => void this.probe(evt.detail));
  }

  private listenPort(): number | undefined {
    for (const address of this.options.node.addresses()) {
      if (isCircuit(address)) continue;
      const port = /\/tcp\/(\d+)/.exec(address)?.[1];
      if (port) return Number(port);
    }
    return undefined;
  }

  /** Forgets the answers and asks the peers we are directly connected to again: a router
   *  began (or stopped) forwarding to us, so what they found may have changed. */
  recheck(): void {
    this.asked.clear();
    this.answers.clear();
    for (const connection of this.options.node.libp2p.getConnections()) void this.probe(connection);
  }

  /** Asks a newly connected peer to dial us back (each peer once, a few peers in all). */
  private async probe(connection: Connection): Promise<void> {
    // Cheapest checks first: this runs for every new connection.
    if (this.asked.size >= MAX_PROBES) return;
    const peer = connection.remotePeer.toString();
    if (this.asked.has(peer) || isCircuit(connection.remoteAddr.toString())) return;
    const port = this.listenPort();
    if (port === undefined) return;
    this.asked.add(peer);
    const { log } = this.options;
    let framed: FramedStream | undefined;
    try {
      framed = new FramedStream(await connection.newStream(DIALBACK_PROTOCOL, { signal: AbortSignal.timeout(DIALBACK_TIMEOUT_MS) }), 4096);
      await framed.send(DialbackRequest.parse({ t: 'dialback', port }));
      const answer = DialbackAnswer.parse(await framed.receive(DIALBACK_TIMEOUT_MS * 2));
      if (!answer.address) return;
      this.answers.set(peer, answer.ok);
      if (answer.ok) this.confirmed.add(answer.address);
      log.info({ peer, address: answer.address, ok: answer.ok, state: this.state }, answer.ok ? 'a member dialled this agent back' : 'a member could not dial this agent back');
      this.options.onChange();
    } catch (err) {
      this.asked.delete(peer);
      log.debug({ peer, err: (err as Error).message }, 'no dial-back answer');
    } finally {
      await framed?.close();
    }
  }

  private async answer(framed: FramedStream, connection: Connection): Promise<void> {
    try {
      const request = DialbackRequest.parse(await framed.receive(DIALBACK_TIMEOUT_MS));
      const seen = ipOf(connection.remoteAddr.toString());
      if (!seen) {
        await framed.send({ t: 'dialed', ok: false, address: '' });
        return;
      }
      const address = `/${seen.family}/${seen.host}/tcp/${request.port}`;
      let ok = false;
      let probe: Connection | undefined;
      try {
        probe = await this.options.node.dialNew(`${address}/p2p/${connection.remotePeer.toString()}`, { signal: AbortSignal.timeout(DIALBACK_TIMEOUT_MS) });
        ok = true;
      } catch {
        ok = false;
      } finally {
        await probe?.close().catch(() => undefined);
      }
      await framed.send({ t: 'dialed', ok, address: address.slice(0, MEMBER_LIMITS.addressBytes) });
    } catch (err) {
      this.options.log.debug({ err: (err as Error).message }, 'a dial-back request failed');
    } finally {
      await framed.close();
    }
  }

  /**
   * When unreachable, keeps one reservation on a relay: the first candidate (a member that is
   * reachable and relays) this node is directly connected to.
   */
  async keepRelay(candidates: string[]): Promise<void> {
    if (this.state !== 'unreachable' || this.reserving) return;
    const node = this.options.node;
    if (this.relayedOn && node.addresses().some((a) => a.includes(`/p2p/${this.relayedOn}/p2p-circuit`))) return;
    this.relayedOn = undefined;
    this.reserving = true;
    try {
      for (const relay of candidates) {
        const connection = node.libp2p.getConnections().find((c) => c.remotePeer.toString() === relay && !isCircuit(c.remoteAddr.toString()));
        if (!connection) continue;
        const address = `${connection.remoteAddr.toString().replace(/\/p2p\/[^/]+$/, '')}/p2p/${relay}`;
        try {
          await node.listenOnRelay(address);
          this.relayedOn = relay;
          this.options.log.info({ relay: address }, 'reachable through a relay');
          this.options.onChange();
          return;
        } catch (err) {
          this.options.log.warn({ relay: address, err: (err as Error).message }, 'could not take a relay reservation');
        }
      }
    } finally {
      this.reserving = false;
    }
  }
}

/** Direct addresses first, relayed ones last, or the reverse for a member that is not reachable. */
export function dialOrder(addresses: string[], reachable: boolean | undefined): string[] {
  const direct = addresses.filter((a) => !isCircuit(a));
  const relayed = addresses.filter(isCircuit);
  return reachable === false ? [...relayed, ...direct] : [...direct, ...relayed];
}
