// Asks the home router to forward the agent's listening port, as games and torrent clients do:
// NAT-PMP first (one UDP exchange with the default gateway, answered in milliseconds), then
// UPnP IGD (SSDP search, then SOAP over HTTP) for routers without NAT-PMP. The mapping is
// renewed at half its lifetime and removed when the agent stops; an agent killed outright
// leaves a NAT-PMP mapping for at most its lifetime (10 minutes).
//
// bench/nat-mapping.ts measured the choices against miniupnpd: see docs/mesh.md.
import { upnpNat, type Gateway } from '@achingbrain/nat-port-mapper';
import type { Logger } from '../log.js';
import { defaultGateway, NatPmpClient } from './nat-pmp.js';
import { addressTowards, publicInterfaceAddresses } from './addresses.js';

export type MappingMethod = 'nat-pmp' | 'upnp';

export interface PortMapping {
  method: MappingMethod;
  /** The router's external address and the port it forwards to us. */
  externalAddress: string;
  externalPort: number;
  /** Our address on the router's network, and the port the router forwards to. */
  internalAddress: string;
  internalPort: number;
}

export interface PortMapperOptions {
  /** The TCP port the agent listens on. */
  port: number;
  log: Logger;
  /** A mapping was made, renewed, lost or removed. */
  onChange: () => void;
  /** Which protocols to try, in order (default both, NAT-PMP first). */
  methods?: MappingMethod[];
  /** Seconds a NAT-PMP mapping lives unless renewed (UPnP: the library's 1 h minimum). */
  lifetime?: number;
  /** How long an UPnP gateway search lasts. */
  upnpSearchMs?: number;
}

const NAT_PMP_LIFETIME_S = 600;
/** A router that did not map is asked again this often (it may have been off, or busy). */
const RETRY_MS = 5 * 60_000;
const STOP_TIMEOUT_MS = 2_000;

export class PortMapper {
  private current?: PortMapping;
  private pmp?: NatPmpClient;
  private upnp?: Gateway;
  private renewTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private attempt?: Promise<void>;
  private stopped = false;
  /** Ends a search or request in flight when the agent stops. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: PortMapperOptions) {}

  /** The mapping in force, if the router made one. */
  get mapping(): PortMapping | undefined {
    return this.current;
  }

  /** Starts asking in the background; an agent with a public address of its own asks nobody. */
  start(): void {
    const [own] = publicInterfaceAddresses();
    if (own) {
      this.options.log.info({ address: own }, 'this agent has a public address: no port mapping asked for');
      return;
    }
    this.attempt = this.map();
  }

  private async map(): Promise<void> {
    const { port, log } = this.options;
    const gateway = await defaultGateway();
    if (!gateway) {
      log.info('no default gateway: no port mapping');
      return;
    }
    for (const method of this.options.methods ?? ['nat-pmp', 'upnp']) {
      if (this.stopped) return;
      const started = performance.now();
      try {
        const mapping = method === 'nat-pmp' ? await this.mapByNatPmp(gateway) : await this.mapByUpnp(gateway);
        if (this.stopped) {
          await this.unmap(mapping);
          return;
        }
        this.current = mapping;
        log.info({ ...mapping, ms: Math.round(performance.now() - started) }, 'the router maps this agent\'s port');
        this.options.onChange();
        return;
      } catch (err) {
        log.info({ method, gateway, err: (err as Error).message, ms: Math.round(performance.now() - started) }, 'no port mapping');
      }
    }
    if (!this.stopped) {
      this.retryTimer = setTimeout(() => (this.attempt = this.map()), RETRY_MS);
      this.retryTimer.unref();
    }
  }

  private async mapByNatPmp(gateway: string): Promise<PortMapping> {
    const internalAddress = addressTowards(gateway);
    if (!internalAddress) throw new Error(`no address of ours on ${gateway}'s network`);
    const client = (this.pmp = new NatPmpClient(gateway));
    const lifetime = this.options.lifetime ?? NAT_PMP_LIFETIME_S;
    const granted = await client.map(this.options.port, lifetime, this.stopping.signal);
    const externalAddress = await client.externalAddress(this.stopping.signal);
    this.scheduleRenewal(client, granted.lifetime);
    return { method: 'nat-pmp', externalAddress, externalPort: granted.externalPort, internalAddress, internalPort: this.options.port };
  }

  /** Renews at half the lifetime the router granted; a refusal drops the mapping and asks again later. */
  private scheduleRenewal(client: NatPmpClient, lifetime: number): void {
    this.renewTimer = setTimeout(() => {
      void (async () => {
        try {
          const granted = await client.map(this.options.port, this.options.lifetime ?? NAT_PMP_LIFETIME_S, AbortSignal.timeout(10_000), this.current?.externalPort);
          if (this.current) {
            this.current = { ...this.current, externalPort: granted.externalPort };
            this.options.onChange();
          }
          if (!this.stopped) this.scheduleRenewal(client, granted.lifetime);
        } catch (err) {
          this.options.log.warn({ err: (err as Error).message }, 'the router did not renew the port mapping');
          this.current = undefined;
          this.options.onChange();
          if (!this.stopped) this.attempt = this.map();
        }
      })();
    }, (Math.max(lifetime, 2) * 1000) / 2);
    this.renewTimer.unref();
  }

  private async mapByUpnp(gateway: string): Promise<PortMapping> {
    const internalHost = addressTowards(gateway);
    if (!internalHost) throw new Error(`no address of ours on ${gateway}'s network`);
    const signal = AbortSignal.any([AbortSignal.timeout(this.options.upnpSearchMs ?? 5_000), this.stopping.signal]);
    // The library renews by itself (an hour's lease, an hour minus a minute apart).
    const client = upnpNat({ description: 'meshcc', autoRefresh: true });
    for await (const found of client.findGateways({ signal })) {
      if (found.host !== gateway) continue;
      const mapping = await found.map(this.options.port, internalHost, { protocol: 'tcp', signal });
      this.upnp = found;
      return { method: 'upnp', externalAddress: mapping.externalHost, externalPort: mapping.externalPort, internalAddress: internalHost, internalPort: this.options.port };
    }
    throw new Error(`${gateway} did not answer an UPnP IGD search`);
  }

  private async unmap(mapping: PortMapping): Promise<void> {
    const signal = AbortSignal.timeout(STOP_TIMEOUT_MS);
    if (mapping.method === 'nat-pmp') await this.pmp?.unmap(mapping.internalPort, signal);
    else await this.upnp?.stop({ signal });
  }

  /** Removes the mapping from the router (waiting at most 2 s for it). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearTimeout(this.renewTimer);
    clearTimeout(this.retryTimer);
    await this.attempt?.catch(() => undefined);
    const mapping = this.current;
    this.current = undefined;
    if (!mapping) return;
    try {
      await this.unmap(mapping);
      this.options.log.info({ method: mapping.method }, 'port mapping removed');
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'could not remove the port mapping; the router drops it when its lifetime ends');
    }
  }
}
