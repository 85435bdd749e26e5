// Discovery where multicast does not reach (Kubernetes networks, cloud VPCs): a DNS name
// (a headless Service) resolves to the agents' addresses; each is dialled on the mesh port,
// again whenever the name is looked up anew. The peer id comes from the connection's
// handshake, so the name needs to carry nothing but addresses; from then on such a peer is
// like any other (adverts, view, election).
import { promises as dns } from 'node:dns';
import { isIPv6 } from 'node:net';
import { MeshccError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';

export const DEFAULT_MESH_PORT = 7624;
const REFRESH_MS = 15_000;

export interface DnsPeersOptions {
  /** NAME or NAME:PORT (the port agents listen on; default 7624). */
  target: string;
  /** Dial an address (a multiaddr without peer id); resolves to the peer id reached. */
  dial: (address: string) => Promise<string>;
  /** Whether a peer already has a connection (then its address is not dialled again). */
  connected: (peerId: string) => boolean;
  selfId: () => string | undefined;
  /** This agent's own multiaddrs: the name lists it too. */
  selfAddresses: () => string[];
  log: Logger;
  refreshMs?: number;
}

export function parseDnsTarget(target: string): { name: string; port: number } {
  const m = /^([A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(target.trim());
  if (!m || Number(m[2] ?? DEFAULT_MESH_PORT) > 65535) throw new MeshccError('bad-config', `--peers-dns (MESHCC_PEERS_DNS) takes NAME or NAME:PORT, got '${target}'`);
  return { name: m[1]!, port: Number(m[2] ?? DEFAULT_MESH_PORT) };
}

export class DnsPeers {
  private timer?: NodeJS.Timeout;
  private readonly name: string;
  private readonly port: number;
  /** address → the peer id last reached there */
  private readonly known = new Map<string, string>();
  private looking = false;

  constructor(private readonly options: DnsPeersOptions) {
    ({ name: this.name, port: this.port } = parseDnsTarget(options.target));
  }

  start(): void {
    void this.lookUp();
    this.timer = setInterval(() => void this.lookUp(), this.options.refreshMs ?? REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Resolves the name and dials every address not connected yet. */
  async lookUp(): Promise<void> {
    if (this.looking) return;
    this.looking = true;
    try {
      const [v4, v6] = await Promise.all([dns.resolve4(this.name).catch(() => [] as string[]), dns.resolve6(this.name).catch(() => [] as string[])]);
      const addresses = [...v4, ...v6];
      if (addresses.length === 0) {
        this.options.log.warn({ name: this.name }, '--peers-dns: the name resolves to no address (yet)');
        return;
      }
      await Promise.all(addresses.map((ip) => this.reach(ip)));
    } finally {
      this.looking = false;
    }
  }

  private async reach(ip: string): Promise<void> {
    const { connected, selfId, dial, log } = this.options;
    const address = `/${isIPv6(ip) ? 'ip6' : 'ip4'}/${ip}/tcp/${this.port}`;
    const peer = this.known.get(address);
    if (peer && (peer === selfId() || connected(peer))) return;
    if (this.options.selfAddresses().some((own) => own === address || own.startsWith(`${address}/`))) return;
    try {
      const reached = await dial(address);
      this.known.set(address, reached);
      log.debug({ address, peer: reached }, 'connected to a peer found by DNS');
    } catch (err) {
      const message = (err as Error).message;
      // Our own address is in the name too.
      if (/dial (?:self|ourselves)|can(?:not|'t) dial self/i.test(message)) this.known.set(address, selfId() ?? '');
      else log.debug({ address, err: message }, 'could not dial an address found by DNS');
    }
  }
}
