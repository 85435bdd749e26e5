// Loopback TCP for connection-chaos tests: many source hosts, and a proxy between a real
// libp2p dialler and an agent that records what the dialler sends or cuts the connection
// after a given number of bytes.
import net from 'node:net';

/**
 * Distinct loopback source addresses (127.a.b.c; Linux answers on all of 127/8). libp2p admits
 * 5 inbound connections a second per remote host, relayed ones counted by the relay's host:
 * a test that opens thousands from one address would only ever meet that limit.
 */
export class LoopbackHosts {
  private n = 0;

  constructor(private readonly secondOctet: number) {}

  next(): string {
    const i = this.n++;
    const third = Math.floor(i / 254) % 256;
    const fourth = (i % 254) + 1;
    return `127.${this.secondOctet + Math.floor(i / (254 * 256))}.${third}.${fourth}`;
  }
}

/** Where a proxied connection is cut: after so many bytes from the dialler (or from the agent), by FIN or RST. */
export interface Cut {
  afterDiallerBytes?: number;
  afterAgentBytes?: number;
  how: 'end' | 'reset';
}

export interface TcpProxy {
  port: number;
  /** Bytes each dialler sent, in connection order (only when recording). */
  recorded: Buffer[];
  /** Bytes the agent sent back on each, likewise. */
  replies: Buffer[];
  /** Connections whose cut point was reached. */
  cuts: number;
  /** Cuts for the next connections, taken in the order they arrive. */
  plan: Cut[];
  close(): Promise<void>;
}

function stop(socket: net.Socket, how: Cut['how']): void {
  if (socket.destroyed) return;
  if (how === 'reset') socket.resetAndDestroy();
  else socket.end();
}

/** Forwards loopback connections to `targetPort`, each from a new source host of `hosts`. */
export async function startTcpProxy(targetPort: number, hosts: LoopbackHosts, options: { record?: boolean } = {}): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: TcpProxy = { port: 0, recorded: [], replies: [], cuts: 0, plan: [], close: async () => undefined };
  const server = net.createServer({ allowHalfOpen: true }, (dialler) => {
    const cut = proxy.plan.shift();
    const agent = net.connect({ port: targetPort, host: '127.0.0.1', localAddress: hosts.next(), allowHalfOpen: true });
    const index = options.record ? proxy.recorded.push(Buffer.alloc(0)) - 1 : -1;
    if (options.record) proxy.replies.push(Buffer.alloc(0));
    for (const socket of [dialler, agent]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        dialler.destroy();
        agent.destroy();
      });
    }
    let fromDialler = 0;
    let fromAgent = 0;
    let cutDone = false;
    const cutNow = () => {
      if (cutDone) return;
      cutDone = true;
      proxy.cuts++;
      stop(agent, cut!.how);
      stop(dialler, cut!.how);
    };
    const forward = (from: net.Socket, to: net.Socket, limit: number | undefined, count: (n: number) => number) => {
      from.on('data', (chunk: Buffer) => {
        const before = count(0);
        const take = limit === undefined ? chunk.length : Math.max(0, Math.min(chunk.length, limit - before));
        if (take > 0 && !to.destroyed) to.write(chunk.subarray(0, take));
        count(take);
        const log = from === dialler ? proxy.recorded : proxy.replies;
        if (index >= 0) log[index] = Buffer.concat([log[index]!, chunk.subarray(0, take)]);
        if (limit !== undefined && count(0) >= limit) cutNow();
      });
      from.on('end', () => to.end());
    };
    forward(dialler, agent, cut?.afterDiallerBytes, (n) => (fromDialler += n));
    forward(agent, dialler, cut?.afterAgentBytes, (n) => (fromAgent += n));
    if (cut && (cut.afterDiallerBytes === 0 || cut.afterAgentBytes === 0)) agent.once('connect', cutNow);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
