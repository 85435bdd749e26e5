// The agent's unix socket: compile requests from clients and queries from the CLI.
// Every connection carries frames (protocol/framing.ts); the first message says what it is.
// A bad connection gets one error frame and is closed; the agent keeps serving the others.
import net from 'node:net';
import { promises as fs } from 'node:fs';
import { MeshccError } from '../protocol/errors.js';
import { encodeFrame, FrameDecoder } from '../protocol/framing.js';
import { CacheQuery } from './cache/cli.js';
import { parseClientMessage } from '../protocol/client-message.js';
import { ClientMessage, LIMITS, parseMessage, PROTOCOL_VERSION, type AgentReply, type MembersQuery } from '../protocol/messages.js';
import type { ClientConnection, CompileService } from './compile-service.js';
import type { Logger } from './log.js';
import type { ToolchainOp, ToolchainOpResult } from './toolchain-admin.js';

export interface ClientSocketParts {
  socketPath: string;
  compile: CompileService;
  statsSnapshot: () => unknown;
  meshStatus: () => unknown[] | Promise<unknown[]>;
  toolchains: (request: ToolchainOp) => Promise<ToolchainOpResult>;
  /** The monitor's addresses (after opening it on one more address) and its token. */
  monitor: (listen?: { host: string; port: number }) => Promise<{ urls: { url: string; open: boolean }[]; token: string }>;
  members: (request: MembersQuery) => Promise<Record<string, unknown>>;
  /** `meshcc cache clear` (node/cache/cli.ts). */
  cache?: (request: CacheQuery) => Promise<Record<string, unknown>>;
  log: Logger;
}

class SocketConnection implements ClientConnection {
  closed = false;
  readonly finished: Promise<number | undefined>;
  private settle!: (exit: number | undefined) => void;

  constructor(private readonly socket: net.Socket) {
    this.finished = new Promise((resolve) => (this.settle = resolve));
    socket.on('close', () => {
      this.closed = true;
      this.settle(undefined);
    });
  }

  reply(message: AgentReply): void {
    if (!this.closed) this.socket.write(encodeFrame(message));
  }

  done(exit: number): void {
    this.settle(exit);
  }

  fail(code: string, message: string): void {
    this.reply({ t: 'error', code, message });
    this.end();
  }

  end(): void {
    this.socket.end();
  }
}

export class ClientSocketServer {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly parts: ClientSocketParts) {}

  async start(): Promise<void> {
    const { socketPath } = this.parts;
    const server = net.createServer((socket) => this.accept(socket));
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => resolve());
      });
    } finally {
      process.umask(previousUmask);
    }
    await fs.chmod(socketPath, 0o600);
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(socket: net.Socket): void {
    const { log } = this.parts;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => log.debug({ err: err.message }, 'client connection error'));
    const conn = new SocketConnection(socket);
    const decoder = new FrameDecoder(LIMITS.clientFrameBytes);
    let started = false;
    socket.on('data', (chunk) => {
      try {
        for (const value of decoder.push(chunk)) {
          if ((value as { t?: unknown } | null)?.t === 'cache' && !started) {
            started = true;
            this.answerCache(parseMessage(CacheQuery, value), conn);
            continue;
          }
          const message = parseClientMessage(value);
          if (message.t === 'done') {
            conn.done(message.exit);
            continue;
          }
          if (started) throw new MeshccError('bad-message', 'one request per connection');
          started = true;
          this.dispatch(message, conn);
        }
      } catch (err) {
        const code = err instanceof MeshccError ? err.code : 'bad-message';
        log.warn({ code, err: (err as Error).message }, 'rejected a client message');
        socket.removeAllListeners('data');
        conn.fail(code, (err as Error).message);
      }
    });
  }

  private answerCache(request: CacheQuery, conn: SocketConnection): void {
    if (request.v !== PROTOCOL_VERSION || !this.parts.cache) {
      conn.fail(this.parts.cache ? 'version-mismatch' : 'no-cache', this.parts.cache ? `client speaks protocol ${request.v}` : 'this agent has no result cache');
      return;
    }
    this.parts.cache(request).then(
      (result) => {
        conn.reply({ t: 'cache', ...result } as unknown as AgentReply);
        conn.end();
      },
      (err: Error) => conn.fail(err instanceof MeshccError ? err.code : 'internal-error', err.message),
    );
  }

  private dispatch(message: Exclude<ClientMessage, { t: 'done' }>, conn: SocketConnection): void {
    const { log } = this.parts;
    if (message.v !== PROTOCOL_VERSION) {
      conn.fail('version-mismatch', `client speaks protocol ${message.v}, this agent speaks ${PROTOCOL_VERSION}`);
      return;
    }
    switch (message.t) {
      case 'ping':
        conn.reply({ t: 'pong', v: PROTOCOL_VERSION, pid: process.pid });
        conn.end();
        return;
      case 'stats':
        conn.reply({ t: 'stats', stats: this.parts.statsSnapshot() });
        conn.end();
        return;
      case 'status':
        // A member asks the scheduler for the mesh's loads first.
        void Promise.resolve(this.parts.meshStatus())
          .then((agents) => {
            conn.reply({ t: 'status', agents });
            conn.end();
          })
          .catch((err: Error) => conn.fail('status-failed', err.message));
        return;
      case 'toolchains': {
        const op: ToolchainOp | undefined =
          message.op === 'list' ? { op: 'list' } : message.op === 'create' ? (message.compiler ? { op: 'create', compiler: message.compiler } : undefined) : { op: 'prune', maxBytes: message.maxBytes ?? 0 };
        if (!op) {
          conn.fail('bad-message', 'toolchain create needs the compiler');
          return;
        }
        replyWhenDone(conn, 'toolchains', this.parts.toolchains(op));
        return;
      }
      case 'monitor':
        replyWhenDone(conn, 'monitor', this.parts.monitor(message.listen));
        return;
      case 'members':
        replyWhenDone(conn, 'members', this.parts.members(message));
        return;
      case 'compile':
        this.parts.compile.handle(message, conn).catch((err: Error) => {
          log.error({ err: err.message, stack: err.stack }, 'compile request failed');
          conn.fail('internal-error', err.message);
        });
    }
  }
}

/** Answers a query whose work is asynchronous: its result as one reply of type `t`, or the failure. */
function replyWhenDone(conn: SocketConnection, t: 'toolchains' | 'monitor' | 'members', work: Promise<object>): void {
  work.then(
    (result) => {
      conn.reply({ t, ...result } as AgentReply);
      conn.end();
    },
    (err: Error) => conn.fail(err instanceof MeshccError ? err.code : 'internal-error', err.message),
  );
}
