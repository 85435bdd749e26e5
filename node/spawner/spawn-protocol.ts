// The native spawner's wire format (node/spawner/meshcc-spawn.c says it in full): requests
// written to its stdin, replies read from its stdout, each a u32 little-endian length and a body.
import os from 'node:os';
import type { SpawnReply, SpawnRequest } from './lean-spawn.js';

const KIND_RUN = 1;
const KIND_KILL = 2;
const FLAG_FD3 = 1;
const FLAG_LIMITS = 2;
const FLAG_ENV = 4;
const NOT_STARTED = 2;
const SIGNALLED = 1;
const STEPS = ['fork', 'chdir', 'setrlimit', 'spawn'];

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));
const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** A u64 field from a JavaScript number: whole, not negative, at most 2^53. */
const u64 = (n: number) => BigInt(Math.max(0, Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER)));

class Writer {
  private readonly parts: Buffer[] = [];
  private length = 0;
  private push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u8(n: number): void {
    this.push(Buffer.of(n));
  }
  u32(n: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(n >>> 0);
    this.push(b);
  }
  u64(n: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(u64(n));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s);
    this.u32(b.length);
    this.push(b);
  }
  /** The message: its length, then what was written. */
  framed(): Buffer {
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(this.length);
    return Buffer.concat([head, ...this.parts], 4 + this.length);
  }
}

/** Why a request cannot be sent as it is (a NUL byte cannot reach exec), or undefined. */
export function unsendable(req: SpawnRequest): string | undefined {
  const strings = [req.file, req.argv0 ?? '', req.cwd ?? '', ...req.args, ...Object.entries(req.env ?? {}).map(([k, v]) => `${k}=${v}`)];
  return strings.some((s) => s.includes('\0')) ? `an argument of ${req.file} holds a NUL byte` : undefined;
}

export function encodeRun(req: SpawnRequest): Buffer {
  const w = new Writer();
  w.u8(KIND_RUN);
  w.u32(req.id);
  const env = req.env ? Object.entries(req.env).filter((e): e is [string, string] => e[1] !== undefined) : undefined;
  w.u8((req.captureFd3 ? FLAG_FD3 : 0) | (req.limits ? FLAG_LIMITS : 0) | (env ? FLAG_ENV : 0));
  w.u64(req.outputLimit);
  w.u32(req.timeoutMs ?? 0);
  if (req.limits) {
    const l = req.limits;
    for (const n of [l.cpuSoftSeconds, l.cpuHardSeconds, l.addressSpaceBytes, l.fileSizeBytes, l.coreBytes]) w.u64(n);
  }
  w.str(req.file);
  w.str(req.argv0 ?? '');
  w.str(req.cwd ?? '');
  w.u32(req.args.length);
  for (const a of req.args) w.str(a);
  if (env) {
    w.u32(env.length);
    for (const [k, v] of env) w.str(`${k}=${v}`);
  }
  return w.framed();
}

export function encodeKill(id: number): Buffer {
  const w = new Writer();
  w.u8(KIND_KILL);
  w.u32(id);
  return w.framed();
}

/** Gathers the spawner's stdout into whole replies. */
export class ReplyReader {
  private pending: Buffer = Buffer.alloc(0);

  /** The replies this chunk completes, in order. */
  push(chunk: Buffer, fileOf: (id: number) => string | undefined): SpawnReply[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const replies: SpawnReply[] = [];
    let at = 0;
    while (this.pending.length - at >= 4) {
      const length = this.pending.readUInt32LE(at);
      if (this.pending.length - at - 4 < length) break;
      replies.push(decodeReply(this.pending.subarray(at + 4, at + 4 + length), fileOf));
      at += 4 + length;
    }
    this.pending = this.pending.subarray(at);
    return replies;
  }
}

function decodeReply(body: Buffer, fileOf: (id: number) => string | undefined): SpawnReply {
  const id = body.readUInt32LE(0);
  const how = body.readUInt8(4);
  const value = body.readInt32LE(5);
  const step = body.readUInt8(9);
  const overLimit = body.readUInt8(10) === 1;
  const timedOut = body.readUInt8(11) === 1;
  const helperEnds = body.readUInt8(12) === 1;
  let at = 13;
  const bytes = () => {
    const n = body.readUInt32LE(at);
    const b = body.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return b;
  };
  const stdout = bytes();
  const stderr = bytes();
  const fd3 = bytes();
  if (how === NOT_STARTED) {
    // Worded as Node's spawn words it: "spawn bwrap ENOENT".
    const error = `${STEPS[step] ?? 'spawn'} ${fileOf(id) ?? ''} ${errnoNames.get(value) ?? `errno ${value}`}`.replace(/ +/g, ' ');
    return { id, error, code: null, signal: null, stdout, stderr, fd3, overLimit, timedOut };
  }
  const ends = helperEnds ? { helperEnds } : {};
  if (how === SIGNALLED) return { id, code: null, signal: signalNames.get(value) ?? null, stdout, stderr, fd3, overLimit, timedOut, ...ends };
  return { id, code: value, signal: null, stdout, stderr, fd3, overLimit, timedOut, ...ends };
}
