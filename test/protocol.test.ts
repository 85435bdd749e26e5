import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../protocol/framing.js';
import { parseClientMessage } from '../protocol/client-message.js';
import { ClientMessage, CompileRequest, LIMITS, parseMessage } from '../protocol/messages.js';
import { rng } from './helpers/rng.js';

const compile = { t: 'compile', v: 1, cwd: '/src', argv: ['gcc', '-c', 'a.c'], compiler: '/usr/bin/gcc', env: {} };

describe('framing', () => {
  it('round-trips a message split across arbitrary chunks', () => {
    const frame = encodeFrame({ ...compile, blob: Buffer.from([1, 2, 3]) });
    const decoder = new FrameDecoder(1024);
    const out: unknown[] = [];
    for (let i = 0; i < frame.length; i += 3) out.push(...decoder.push(frame.subarray(i, i + 3)));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ cwd: '/src', argv: ['gcc', '-c', 'a.c'] });
    expect(Buffer.from((out[0] as { blob: Uint8Array }).blob)).toEqual(Buffer.from([1, 2, 3]));
  });

  it('decodes several frames from one chunk', () => {
    const decoder = new FrameDecoder(1024);
    const both = Buffer.concat([encodeFrame({ n: 1 }), encodeFrame({ n: 2 })]);
    expect(decoder.push(both)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('rejects a frame larger than the limit from its header alone', () => {
    const decoder = new FrameDecoder(8 * 1024 * 1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(100 * 1024 * 1024);
    expect(() => decoder.push(header)).toThrow('frame of 100 MiB exceeds the 8 MiB limit');
  });

  it('rejects bytes that are not msgpack with a one-line error', () => {
    const decoder = new FrameDecoder(1024);
    const body = Buffer.from([0x92, 0x01]); // an array of two that ends after one
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    expect(() => decoder.push(Buffer.concat([header, body]))).toThrow(/not valid msgpack/);
  });

  it('writes plain msgpack maps that any msgpack reader understands', () => {
    const frame = encodeFrame({ t: 'ping', v: 1 });
    const standard = new Packr({ useRecords: false });
    expect(standard.unpack(frame.subarray(4))).toEqual({ t: 'ping', v: 1 });
    expect([0xde, 0xdf].includes(frame[4]!) || (frame[4]! & 0xf0) === 0x80).toBe(true); // a map
  });
});

describe('message validation', () => {
  it('accepts a well-formed compile request', () => {
    expect(parseMessage(CompileRequest, compile).argv).toEqual(['gcc', '-c', 'a.c']);
  });

  it('names the missing field', () => {
    const { cwd: _cwd, ...noCwd } = compile;
    expect(() => parseMessage(ClientMessage, noCwd)).toThrow(/invalid cwd/);
  });

  it('rejects a relative working directory', () => {
    expect(() => parseMessage(ClientMessage, { ...compile, cwd: 'src' })).toThrow(/absolute path/);
  });

  it('rejects an unknown message type', () => {
    expect(() => parseMessage(ClientMessage, { t: 'format-disk', v: 1 })).toThrow(/invalid t/);
  });
});

describe('the compile request checked by hand', () => {
  const oddValues: unknown[] = [
    undefined, null, 0, -0, -1, 1.5, 0o777, 0o1000, 2 ** 53, NaN, Infinity, 5n, -5n, 2n ** 70n, true, false, '', '/', 'rel', 'x'.repeat(LIMITS.pathBytes),
    `/${'x'.repeat(LIMITS.pathBytes)}`, [], ['gcc'], ['gcc', 1], ['x'.repeat(LIMITS.argBytes + 1)], {}, { A: 'b' }, { A: 1 }, Object.create(null), new Uint8Array(2), { ['k'.repeat(LIMITS.argBytes + 1)]: 'v' },
  ];
  const fields = ['t', 'v', 'cwd', 'argv', 'compiler', 'env', 'umask', 'tty', 'startedUs', 'uid', 'extra'];

  /** What a parser made of the value: the message, or that it threw a ProtocolError. */
  function outcome(parse: () => unknown): unknown {
    try {
      return { ok: parse() };
    } catch (err) {
      return { threw: (err as Error).name };
    }
  }

  it('accepts and rejects exactly what the schema does, and gives the same message', () => {
    const random = rng(20261202);
    const base = { ...compile, env: { PATH: '/usr/bin', LANG: 'C' }, umask: 0o22, tty: false, startedUs: 123n, uid: 1000 };
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const value: Record<string, unknown> = structuredClone(base);
      const changes = Math.floor(random() * 3);
      for (let c = 0; c < changes; c++) {
        const field = fields[Math.floor(random() * fields.length)]!;
        const odd = oddValues[Math.floor(random() * oddValues.length)];
        if (odd === undefined && random() < 0.5) delete value[field];
        else value[field] = odd;
      }
      const fast = outcome(() => parseClientMessage(value));
      expect(fast, JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))).toEqual(outcome(() => parseMessage(ClientMessage, value)));
      if ('ok' in (fast as object)) accepted++;
    }
    // The hand check answered (zod builds a new env object; the hand check keeps the one it read).
    const read = structuredClone(base);
    expect((parseClientMessage(read) as CompileRequest).env).toBe(read.env);
    // Both kinds were tried.
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeLessThan(4500);
  });
});
