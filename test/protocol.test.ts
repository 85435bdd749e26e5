import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../protocol/framing.js';
import { ClientMessage, CompileRequest, parseMessage } from '../protocol/messages.js';

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
