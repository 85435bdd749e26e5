// A NAT-PMP client (RFC 6886): the router's external address, and TCP port mappings with a
// lifetime, in one UDP exchange each with the default gateway on port 5351.
//
// Why not @achingbrain/nat-port-mapper's NAT-PMP half (bench/nat-mapping.ts measured both):
// it binds UDP port 5350 (two agents on one machine share it), sends each request once with no
// retransmission, and hands its lifetime in milliseconds to a field in seconds, so a mapping it
// leaves behind (an agent killed) stays on the router for 41 days instead of minutes.
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';

export const NAT_PMP_PORT = 5351;
const OP_EXTERNAL_ADDRESS = 0;
const OP_MAP_TCP = 2;
const RESULTS = ['success', 'unsupported version', 'refused (NAT-PMP off or not allowed)', 'network failure (no external address yet)', 'out of resources', 'unsupported opcode'];

export interface PmpMapping {
  externalPort: number;
  /** Seconds the router keeps it unless renewed. */
  lifetime: number;
}

export class NatPmpError extends Error {}

/** The IPv4 default gateway from the kernel's routing table (Linux), or undefined. */
export async function defaultGateway(): Promise<string | undefined> {
  const table = await readFile('/proc/net/route', 'utf8').catch(() => '');
  for (const line of table.split('\n').slice(1)) {
    const [, destination, gateway, flags] = line.trim().split(/\s+/);
    // RTF_UP | RTF_GATEWAY, destination 0.0.0.0; the gateway is a little-endian hex word.
    if (destination !== '00000000' || !gateway || (parseInt(flags ?? '0', 16) & 3) !== 3) continue;
    const word = parseInt(gateway, 16);
    return [word & 255, (word >>> 8) & 255, (word >>> 16) & 255, word >>> 24].join('.');
  }
  return undefined;
}

export class NatPmpClient {
  /**
   * @param gateway the router's LAN address
   * @param attempts sends per request: RFC 6886 starts at 250 ms and doubles; a router that
   *   has not answered by the 4th (3.75 s in all) is taken to not speak NAT-PMP.
   */
  constructor(
    readonly gateway: string,
    private readonly attempts = 4,
  ) {}

  async externalAddress(signal?: AbortSignal): Promise<string> {
    const reply = await this.request(Buffer.from([0, OP_EXTERNAL_ADDRESS]), OP_EXTERNAL_ADDRESS, 12, signal);
    return `${reply[8]}.${reply[9]}.${reply[10]}.${reply[11]}`;
  }

  /** Maps `internalPort` (TCP) for `lifetime` seconds, asking for the same external port. */
  async map(internalPort: number, lifetime: number, signal?: AbortSignal, externalPort = internalPort): Promise<PmpMapping> {
    const message = Buffer.alloc(12);
    message.writeUInt8(OP_MAP_TCP, 1);
    message.writeUInt16BE(internalPort, 4);
    message.writeUInt16BE(externalPort, 6);
    message.writeUInt32BE(lifetime, 8);
    const reply = await this.request(message, OP_MAP_TCP, 16, signal);
    return { externalPort: reply.readUInt16BE(10), lifetime: reply.readUInt32BE(12) };
  }

  /** Removes the mapping of `internalPort` (lifetime 0, external port 0, as the RFC asks). */
  async unmap(internalPort: number, signal?: AbortSignal): Promise<void> {
    await this.map(internalPort, 0, signal, 0);
  }

  private request(message: Buffer, op: number, size: number, signal?: AbortSignal): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      // A connected socket of our own: only the gateway's answers reach it.
      const socket = dgram.createSocket('udp4');
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (err: Error | undefined, reply?: Buffer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        socket.close();
        if (err) reject(err);
        else resolve(reply!);
      };
      const aborted = () => finish(new NatPmpError('NAT-PMP request aborted'));
      signal?.addEventListener('abort', aborted, { once: true });
      socket.on('error', (err) => finish(new NatPmpError(`NAT-PMP: ${err.message}`)));
      socket.on('message', (reply) => {
        if (reply.length < size || reply[0] !== 0 || reply[1] !== 128 + op) return;
        const result = reply.readUInt16BE(2);
        if (result !== 0) finish(new NatPmpError(`the router refused NAT-PMP: ${RESULTS[result] ?? `result ${result}`}`));
        else finish(undefined, reply);
      });
      let sent = 0;
      const send = () => {
        if (sent === this.attempts) {
          finish(new NatPmpError(`no NAT-PMP answer from ${this.gateway}`));
          return;
        }
        socket.send(message, (err) => {
          if (err) finish(new NatPmpError(`NAT-PMP: ${err.message}`));
        });
        timer = setTimeout(send, 250 * 2 ** sent++);
      };
      socket.connect(NAT_PMP_PORT, this.gateway, send);
    });
  }
}
