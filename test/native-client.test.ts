// The native per-invocation client (node/client/meshcc-client.c), built by
// scripts/build-client.js and run against a fake agent: a real unix-socket server in this
// process speaking the real framing. Compiles use the real gcc.
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../protocol/framing.js';
import { ClientMessage, parseMessage } from '../protocol/messages.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLIENT = path.join(root, 'dist', 'client', 'meshcc-cc');
const MASQUERADE = path.join(root, 'dist', 'masquerade');
// The PATH the tests build on, without our masquerade directory should the caller have it there.
const BASE_PATH = (process.env.PATH ?? '/usr/bin:/bin')
  .split(':')
  .filter((d) => path.resolve(d || '.') !== MASQUERADE)
  .join(':');

function which(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(':')) {
    const candidate = path.resolve(dir || '.', name);
    try {
      accessSync(candidate, constants.X_OK);
      if (path.basename(realpathSync(candidate)) !== 'meshcc-cc') return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
const REAL_GCC = which('gcc', BASE_PATH)!;

// ---- a fake agent ------------------------------------------------------------------

type Msg = Record<string, unknown>;
interface Conn {
  request?: Msg;
  later: Msg[];
  closed: Promise<void>;
}
type Behaviour = (request: Msg, socket: net.Socket) => void;

class FakeAgent {
  readonly conns: Conn[] = [];
  private readonly sockets = new Set<net.Socket>();
  private server!: net.Server;

  constructor(readonly socketPath: string, private readonly behave: Behaviour) {}

  async start(): Promise<this> {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      let onClose!: () => void;
      const conn: Conn = { later: [], closed: new Promise((resolve) => (onClose = resolve)) };
      this.conns.push(conn);
      const decoder = new FrameDecoder(8 * 1024 * 1024);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.sockets.delete(socket);
        onClose();
      });
      socket.on('data', (chunk) => {
        for (const value of decoder.push(chunk)) {
          if (conn.request) conn.later.push(value as Msg);
          else {
            conn.request = value as Msg;
            this.behave(conn.request, socket);
          }
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(this.socketPath, resolve));
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const reply = (message: unknown): Behaviour => (_req, socket) => socket.write(encodeFrame(message));
const RUN_LOCAL = reply({ t: 'run-local', reason: 'local slot free' });

// ---- running the client ------------------------------------------------------------

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  ms: number;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err),
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      }),
    );
  });
}

let dir: string;
let agents: FakeAgent[] = [];

async function agent(behave: Behaviour): Promise<FakeAgent> {
  const a = await new FakeAgent(path.join(dir, `agent${agents.length}.sock`), behave).start();
  agents.push(a);
  return a;
}

/** A clean environment: only what a test names, our masquerade directory first on PATH. */
function env(socketPath: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: `${MASQUERADE}:${BASE_PATH}`, HOME: dir, MESHCC_SOCKET: socketPath, ...extra };
}

const COMPILE = ['-c', 'ok.c', '-o', 'ok.o'];

beforeAll(() => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-client.js')], { stdio: 'inherit' });
  expect(existsSync(CLIENT)).toBe(true);
  expect(REAL_GCC).toBeDefined();
});

beforeEach(() => {
  dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'meshcc-nc-')));
  writeFileSync(path.join(dir, 'ok.c'), 'int answer(void) { return 42; }\n');
  writeFileSync(path.join(dir, 'bad.c'), 'int broken(void) { return nope; }\n');
});

afterEach(async () => {
  for (const a of agents) await a.stop();
  agents = [];
  rmSync(dir, { recursive: true, force: true });
});

describe('the request', () => {
  it('carries argv, cwd, the real compiler, the environment subset and a cleaned PATH', async () => {
    const a = await agent(RUN_LOCAL);
    const e = env(a.socketPath, {
      LANG: 'C.UTF-8',
      LC_MESSAGES: 'C',
      CPATH: '/opt/include',
      SOURCE_DATE_EPOCH: '1',
      MESHCC_JOB_NOTE: 'x',
      SECRET_TOKEN: 'not for the agent',
      CFLAGS: '-O9',
    });
    // Through sh so that the umask is a known one; `exec gcc` finds the masquerade link.
    const before = process.hrtime.bigint() / 1000n;
    const r = await run('sh', ['-c', `umask 027; exec gcc ${COMPILE.join(' ')}`], dir, e);
    const after = process.hrtime.bigint() / 1000n;
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(a.conns).toHaveLength(1);
    expect(a.conns[0]!.request).toEqual({
      t: 'compile',
      v: 1,
      cwd: dir,
      argv: ['gcc', ...COMPILE],
      compiler: REAL_GCC,
      env: {
        PATH: BASE_PATH,
        LANG: 'C.UTF-8',
        LC_MESSAGES: 'C',
        CPATH: '/opt/include',
        SOURCE_DATE_EPOCH: '1',
        MESHCC_JOB_NOTE: 'x',
        MESHCC_SOCKET: a.socketPath,
        PWD: dir,
      },
      umask: 0o027,
      tty: false,
      // The smallest msgpack integer that holds it: a number until the machine has been up
      // 71 minutes (2^32 µs), a bigint after.
      startedUs: expect.toSatisfy((v: unknown) => typeof v === 'number' || typeof v === 'bigint'),
      uid: process.getuid!(),
    });
    // When the client started, on the agent's clock (CLOCK_MONOTONIC, microseconds).
    const startedUs = BigInt((a.conns[0]!.request as { startedUs: number | bigint }).startedUs);
    expect(startedUs >= before && startedUs <= after).toBe(true);
    // What the agent's own validation accepts, the done message included.
    expect(parseMessage(ClientMessage, a.conns[0]!.request).t).toBe('compile');
    await a.conns[0]!.closed;
    expect(parseMessage(ClientMessage, a.conns[0]!.later[0])).toEqual({ t: 'done', exit: 0 });
  });

  it('skips every other link to itself on PATH and drops those directories from PATH', async () => {
    const a = await agent(RUN_LOCAL);
    const other = path.join(dir, 'other');
    const clangOnly = path.join(dir, 'clang-only');
    mkdirSync(other);
    mkdirSync(clangOnly);
    symlinkSync(CLIENT, path.join(other, 'gcc'));
    symlinkSync(CLIENT, path.join(clangOnly, 'clang'));
    const e = env(a.socketPath, { PATH: `${other}:${clangOnly}:${MASQUERADE}:${BASE_PATH}` });
    const r = await run('gcc', COMPILE, dir, e);
    expect(r.code).toBe(0);
    expect(a.conns[0]!.request).toMatchObject({ argv: ['gcc', ...COMPILE], compiler: REAL_GCC });
    expect((a.conns[0]!.request!.env as Msg).PATH).toBe(BASE_PATH);
  });
});

describe('run-local', () => {
  it('runs gcc as its child and reports done with the exit code', async () => {
    const a = await agent(RUN_LOCAL);
    const r = await run('gcc', COMPILE, dir, env(a.socketPath));
    expect(r.code).toBe(0);
    expect(r.stderr.toString()).toBe('');
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
    await a.conns[0]!.closed;
    expect(a.conns[0]!.later).toEqual([{ t: 'done', exit: 0 }]);
  });

  it("propagates a failing compile's exit code and diagnostics", async () => {
    const a = await agent(RUN_LOCAL);
    const r = await run('gcc', ['-c', 'bad.c', '-o', 'bad.o'], dir, env(a.socketPath));
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toMatch(/error: .nope. undeclared/);
    await a.conns[0]!.closed;
    expect(a.conns[0]!.later).toEqual([{ t: 'done', exit: 1 }]);
  });

  it('dies of the signal that killed the compiler', async () => {
    const a = await agent(RUN_LOCAL);
    const fake = path.join(dir, 'killed-cc');
    writeFileSync(fake, '#!/bin/sh\nkill -TERM $$\n', { mode: 0o755 });
    const r = await run(CLIENT, [fake, '-c', 'ok.c'], dir, env(a.socketPath));
    expect(r.signal).toBe('SIGTERM');
    await a.conns[0]!.closed;
    expect(a.conns[0]!.later).toEqual([{ t: 'done', exit: 128 + 15 }]);
  });
});

describe('result', () => {
  it("prints the agent's stdout and stderr bytes and exits with its code", async () => {
    // Bigger than a pipe buffer, so the client must handle partial writes.
    const stderr = Buffer.alloc(3 * 1024 * 1024 + 7, 0);
    for (let i = 0; i < stderr.length; i++) stderr[i] = (i * 31) & 0xff;
    const stdout = Buffer.from('out\n\u00e9\0binary');
    const a = await agent(reply({ t: 'result', exit: 3, stdout, stderr, extra: { ignored: [1, 2.5, null] } }));
    const r = await run('gcc', COMPILE, dir, env(a.socketPath));
    expect(r.code).toBe(3);
    expect(r.stdout.equals(stdout)).toBe(true);
    expect(r.stderr.equals(stderr)).toBe(true);
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(false); // the agent compiled, not us
  });

  it('writes the outputs the agent lists from its store: a new one in place, an existing one replaced, each with the mode a compile gives under our umask', async () => {
    const store = path.join(dir, 'store');
    mkdirSync(store);
    const object = Buffer.alloc(300 * 1024 + 3);
    for (let i = 0; i < object.length; i++) object[i] = (i * 7) & 0xff;
    writeFileSync(path.join(store, 'obj'), object, { mode: 0o444 });
    writeFileSync(path.join(store, 'exe'), 'run me\n', { mode: 0o444 });
    // ok.d exists and is a hard link from elsewhere: that other name keeps its bytes.
    writeFileSync(path.join(dir, 'ok.d'), 'old\n');
    linkSync(path.join(dir, 'ok.d'), path.join(dir, 'kept.d'));
    writeFileSync(path.join(store, 'dep'), 'ok.o: ok.c\n', { mode: 0o444 });
    const copy = [
      [path.join(store, 'obj'), path.join(dir, 'ok.o'), object.length, false],
      [path.join(store, 'dep'), path.join(dir, 'ok.d'), 11, false],
      [path.join(store, 'exe'), path.join(dir, 'tool'), 7, true],
    ];
    const a = await agent(reply({ t: 'result', exit: 0, stdout: Buffer.from(''), stderr: Buffer.from('warning: kept\n'), copy }));
    const r = await run('sh', ['-c', `umask 027; exec gcc ${COMPILE.join(' ')}`], dir, env(a.socketPath));
    expect(r.stderr.toString()).toBe('warning: kept\n');
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(dir, 'ok.o')).equals(object)).toBe(true);
    expect(readFileSync(path.join(dir, 'ok.d'), 'utf8')).toBe('ok.o: ok.c\n');
    expect(readFileSync(path.join(dir, 'kept.d'), 'utf8')).toBe('old\n');
    expect(readFileSync(path.join(dir, 'tool'), 'utf8')).toBe('run me\n');
    expect(statSync(path.join(dir, 'ok.o')).mode & 0o777).toBe(0o640);
    expect(statSync(path.join(dir, 'ok.d')).mode & 0o777).toBe(0o640);
    expect(statSync(path.join(dir, 'tool')).mode & 0o777).toBe(0o750);
    expect(readdirSync(dir).filter((f) => f.includes('.meshcc-'))).toEqual([]);
  });

  it.each([
    ['an object gone from the store', (store: string) => rmSync(path.join(store, 'obj')), 300],
    ['an object shorter than the agent said', () => undefined, 301],
    ['an output it cannot create (its directory gone)', () => rmSync(path.join(dir, 'sub'), { recursive: true }), 300],
  ])('compiles with gcc itself on %s, leaving no temporary file', async (_name, spoil, size) => {
    const store = path.join(dir, 'store');
    mkdirSync(store);
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(store, 'obj'), Buffer.alloc(300, 1));
    spoil(store);
    const a = await agent(reply({ t: 'result', exit: 0, stdout: Buffer.from(''), stderr: Buffer.from(''), copy: [[path.join(store, 'obj'), path.join(dir, 'sub', 'x.o'), size, false]] }));
    const r = await run('gcc', COMPILE, dir, env(a.socketPath, { MESHCC_DEBUG: '1' }));
    expect(r.stderr.toString()).toMatch(/^meshcc: could not write a cached output: .+\n$/);
    expect(r.code).toBe(0);
    // What gcc itself wrote, and nothing of the copy.
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
    expect(existsSync(path.join(dir, 'sub')) ? readdirSync(path.join(dir, 'sub')) : []).toEqual([]);
  });
});

describe('falls back to compiling with gcc itself', () => {
  const frame = (header: number, body: number[] = []): Buffer => {
    const b = Buffer.alloc(4 + body.length);
    b.writeUInt32BE(header, 0);
    Buffer.from(body).copy(b, 4);
    return b;
  };
  const cases: [string, Behaviour | null][] = [
    ['an error reply', reply({ t: 'error', code: 'internal-error', message: 'boom' })],
    ['an unknown reply type', reply({ t: 'what', v: 1 })],
    ['a result without an exit code', reply({ t: 'result', stdout: Buffer.from('x') })],
    ['a reply that is not a map', reply(['run-local'])],
    ['a malformed msgpack body', (_q, s) => s.write(frame(2, [0xc1, 0x00]))],
    ['a map that claims more entries than it holds', (_q, s) => s.write(frame(5, [0xdf, 0x7f, 0xff, 0xff, 0xff]))],
    ['a frame over 256 MiB', (_q, s) => s.write(frame(256 * 1024 * 1024 + 1))],
    ['a truncated frame, then close', (_q, s) => s.end(frame(100, [0x81, 0xa1]))],
    ['the agent closing without a reply', (_q, s) => s.end()],
    ['no agent listening', null],
  ];
  it.each(cases)('on %s', async (_name, behave) => {
    const socketPath = behave ? (await agent(behave)).socketPath : path.join(dir, 'nobody.sock');
    const r = await run('gcc', COMPILE, dir, env(socketPath));
    expect(r.stderr.toString()).toBe(''); // identical to a plain build
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
  });

  it('says why on one line with MESHCC_DEBUG=1', async () => {
    const a = await agent(reply({ t: 'error', code: 'internal-error', message: 'boom' }));
    const r = await run('gcc', COMPILE, dir, env(a.socketPath, { MESHCC_DEBUG: '1' }));
    expect(r.stderr.toString()).toBe('meshcc: the agent answered an error: boom\n');
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
  });

  it('does not ask the agent with MESHCC_DISABLE=1', async () => {
    const a = await agent(RUN_LOCAL);
    const r = await run('gcc', COMPILE, dir, env(a.socketPath, { MESHCC_DISABLE: '1' }));
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
    expect(a.conns).toHaveLength(0);
  });

  it('keeps a failing compile failing', async () => {
    const r = await run('gcc', ['-c', 'bad.c'], dir, env(path.join(dir, 'nobody.sock')));
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toMatch(/error: .nope. undeclared/);
  });
});

describe('forms', () => {
  it('launcher: meshcc-cc gcc ...', async () => {
    const a = await agent(RUN_LOCAL);
    const r = await run(CLIENT, ['gcc', ...COMPILE], dir, env(a.socketPath));
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
    expect(a.conns[0]!.request).toMatchObject({ argv: ['gcc', ...COMPILE], compiler: REAL_GCC });
    expect((a.conns[0]!.request!.env as Msg).PATH).toBe(BASE_PATH);
  });

  it('launcher with an explicit compiler path, made absolute against cwd', async () => {
    const a = await agent(RUN_LOCAL);
    mkdirSync(path.join(dir, 'bin'));
    symlinkSync(REAL_GCC, path.join(dir, 'bin', 'mygcc'));
    const r = await run(CLIENT, ['./bin/mygcc', ...COMPILE], dir, env(a.socketPath));
    expect(r.code).toBe(0);
    expect(a.conns[0]!.request).toMatchObject({
      argv: ['./bin/mygcc', ...COMPILE],
      compiler: path.join(dir, 'bin', 'mygcc'),
    });
  });

  // gcc finds its installation from argv[0], so a path to us there is replaced by the
  // real compiler's path (same basename, same diagnostics); gcc could not find cc1 otherwise.
  it('launcher pointed at a masquerade link looks further on PATH', async () => {
    const a = await agent(RUN_LOCAL);
    const r = await run(CLIENT, [path.join(MASQUERADE, 'gcc'), ...COMPILE], dir, env(a.socketPath));
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(a.conns[0]!.request).toMatchObject({ argv: [REAL_GCC, ...COMPILE], compiler: REAL_GCC });
  });

  it('masquerade by name: argv[0] kept as invoked', async () => {
    const a = await agent(RUN_LOCAL);
    const r = await run('gcc', COMPILE, dir, env(a.socketPath));
    expect(r.code).toBe(0);
    expect(a.conns[0]!.request).toMatchObject({ argv: ['gcc', ...COMPILE], compiler: REAL_GCC });
  });

  it('masquerade by path: compiler found on PATH, and argv[0] names it', async () => {
    const a = await agent(RUN_LOCAL);
    const link = path.join(MASQUERADE, 'gcc');
    const r = await run(link, COMPILE, dir, env(a.socketPath, { PATH: BASE_PATH }));
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(a.conns[0]!.request).toMatchObject({ argv: [REAL_GCC, ...COMPILE], compiler: REAL_GCC });
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
  });

  it('masquerade by path with no agent still compiles', async () => {
    const link = path.join(MASQUERADE, 'gcc');
    const r = await run(link, COMPILE, dir, env(path.join(dir, 'nobody.sock')));
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dir, 'ok.o'))).toBe(true);
  });
});

describe('a missing compiler', () => {
  it('launcher: exit 127 with one line', async () => {
    const r = await run(CLIENT, ['no-such-compiler-xyz', '-c', 'ok.c'], dir, env(path.join(dir, 'x.sock')));
    expect(r.code).toBe(127);
    expect(r.stderr.toString()).toBe("meshcc: cannot find the real compiler 'no-such-compiler-xyz' on PATH\n");
  });

  it('masquerade with only itself on PATH: exit 127 with one line', async () => {
    const r = await run(path.join(MASQUERADE, 'clang++'), ['-c', 'ok.c'], dir, {
      PATH: MASQUERADE,
      MESHCC_SOCKET: path.join(dir, 'x.sock'),
    });
    expect(r.code).toBe(127);
    expect(r.stderr.toString()).toBe("meshcc: cannot find the real compiler 'clang++' on PATH\n");
  });
});
