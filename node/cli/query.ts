// One request, one reply over the agent's socket: what the CLI's queries and `meshcc cc` use.
import net from 'node:net';
import { MeshccError } from '../../protocol/errors.js';
import { encodeFrame, FrameDecoder } from '../../protocol/framing.js';

const REPLY_LIMIT = 256 * 1024 * 1024;

export interface AgentSession {
  reply: Promise<Record<string, unknown>>;
  send(message: unknown): void;
  close(): void;
}

export function openSession(socketPath: string, request: unknown): AgentSession {
  const socket = net.connect(socketPath);
  const decoder = new FrameDecoder(REPLY_LIMIT);
  const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'no agent is running' : err.message;
      reject(new MeshccError('no-agent', `cannot reach the agent at ${socketPath}: ${why}`));
    });
    socket.on('data', (chunk) => {
      try {
        const [first] = decoder.push(chunk);
        if (first !== undefined) resolve(first as Record<string, unknown>);
      } catch (err) {
        reject(err);
      }
    });
    socket.once('close', () => reject(new MeshccError('agent-closed', 'the agent closed the connection without answering')));
  });
  socket.write(encodeFrame(request));
  return {
    reply,
    send: (message) => socket.write(encodeFrame(message)),
    close: () => socket.end(),
  };
}

export async function query(socketPath: string, request: unknown): Promise<Record<string, unknown>> {
  const session = openSession(socketPath, request);
  try {
    return await session.reply;
  } finally {
    session.close();
  }
}
