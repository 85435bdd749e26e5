// Reading a message from the client socket. A compile request, the message of every compiler
// invocation, is checked by hand first: zod's parse of one cost ~15 µs warm but ~0.3 ms of a
// direct-mode hit's CPU in the agent's profile. The hand check accepts exactly what the schema
// accepts and builds the same object (unknown keys dropped, startedUs a number); anything it
// does not accept, and every other message, goes through zod, which names what is wrong.
import { ClientMessage, CompileRequest, LIMITS, parseMessage } from './messages.js';

function isPath(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.pathBytes && v.startsWith('/');
}

function isArgv(v: unknown): v is string[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > LIMITS.argvEntries) return false;
  for (const a of v) if (typeof a !== 'string' || a.length > LIMITS.argBytes) return false;
  return true;
}

function isEnv(v: unknown): v is Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
  let n = 0;
  for (const key in v) {
    if (!Object.hasOwn(v, key)) return false;
    const value = (v as Record<string, unknown>)[key];
    if (key.length > LIMITS.argBytes || typeof value !== 'string' || value.length > LIMITS.argBytes || ++n > LIMITS.envEntries) return false;
  }
  return true;
}

/** The request as zod would give it, or undefined when zod must judge it. */
function compileRequestFast(m: Record<string, unknown>): CompileRequest | undefined {
  const { v, cwd, argv, compiler, env, umask, tty, startedUs, uid } = m;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || !isPath(cwd) || !isArgv(argv) || !isPath(compiler) || !isEnv(env)) return undefined;
  const request: CompileRequest = { t: 'compile', v, cwd, argv, compiler, env };
  if (umask !== undefined) {
    if (typeof umask !== 'number' || !Number.isSafeInteger(umask) || umask < 0 || umask > 0o777) return undefined;
    request.umask = umask;
  }
  if (tty !== undefined) {
    if (typeof tty !== 'boolean') return undefined;
    request.tty = tty;
  }
  if (startedUs !== undefined) {
    if (typeof startedUs === 'bigint' ? startedUs < 0n : typeof startedUs !== 'number' || !Number.isSafeInteger(startedUs) || startedUs < 0) return undefined;
    request.startedUs = Number(startedUs);
  }
  if (uid !== undefined) {
    if (typeof uid !== 'number' || !Number.isSafeInteger(uid) || uid < 0) return undefined;
    request.uid = uid;
  }
  return request;
}

export function parseClientMessage(value: unknown): ClientMessage {
  if (typeof value === 'object' && value !== null && (value as { t?: unknown }).t === 'compile') {
    const fast = compileRequestFast(value as Record<string, unknown>);
    if (fast) return fast;
  }
  return parseMessage(ClientMessage, value);
}
