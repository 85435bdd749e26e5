// Misbehaving members of a mesh, for fault tests: real libp2p nodes with the mesh key, members
// whose cards offer free slots and a toolchain, then answer jobs with garbage, with silence, or
// with outputs that differ from a real compile.
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { decodeBody } from '../../protocol/framing.js';
import { JobOffer, Job, parseMessage } from '../../protocol/messages.js';
import { joinThrough, startBareMember } from '../../node/mesh/membership/bare-member.js';
import { createMeshNode } from '../../node/mesh/node.js';
import { JOB_PROTOCOL, JobSession } from '../../node/remote/job-session.js';
import { unpackOffer } from '../../protocol/compression.js';

export type FakeBehaviour = 'garbage' | 'silent' | 'lying';

export interface FakePeer {
  peerId: string;
  address: string;
  /** Every address it listens on (with a 0.0.0.0 listener: one per interface). */
  addresses: string[];
  jobsSeen: number;
  /** Joins the mesh through an agent (which then lists it as a member) by multiaddr with /p2p/…. */
  dial(address: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startFakePeer(options: { meshKeyHex: string; toolchains: string[]; behaviour: FakeBehaviour; listen?: string }): Promise<FakePeer> {
  const log = pino({ level: 'silent' });
  const node = await createMeshNode({
    privateKey: await generateKeyPair('Ed25519'),
    meshKey: Buffer.from(options.meshKeyHex, 'hex'),
    listen: [options.listen ?? '/ip4/127.0.0.1/tcp/0'],
    log,
  });
  const member = await startBareMember(
    node,
    {
      name: `fake-${options.behaviour}`,
      cores: 64,
      slots: 64,
      // Faster than anyone: the client prefers it.
      speed: 1_000_000,
      os: 'linux',
      arch: process.arch,
      libc: 'glibc',
      toolchains: options.toolchains,
    },
    log,
  );
  const fake: FakePeer = {
    peerId: node.peerId.toString(),
    address: node.addresses()[0]!,
    addresses: node.addresses(),
    jobsSeen: 0,
    dial: async (address) => {
      await joinThrough(member, address);
    },
    stop: async () => {
      await member.stop();
      await node.stop();
    },
  };
  await node.libp2p.handle(
    JOB_PROTOCOL,
    (stream) => {
      const session = new JobSession(stream, {
        onJob: (channel) =>
          void (async () => {
            fake.jobsSeen++;
            try {
              const offer = parseMessage(JobOffer, await channel.receive(10_000));
              if (options.behaviour === 'garbage') {
                stream.send(randomBytes(3));
                stream.send(Buffer.from([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]));
                stream.send(randomBytes(4096));
                session.close();
              } else if (options.behaviour === 'silent') {
                await new Promise<void>((resolve) => channel.ended$.signal.addEventListener('abort', () => resolve()));
              } else {
                const job = parseMessage(Job, decodeBody(await unpackOffer({ z: offer.z, data: offer.body }, 64 << 20)));
                const lie = Buffer.from('not what the compiler wrote\n');
                await channel.send({ t: 'result', exit: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), outputs: job.outputs.map((p) => ({ path: p, size: lie.length, executable: false })) });
                for (const [index] of job.outputs.entries()) await channel.send({ t: 'output', index, z: false, data: lie, last: true });
                channel.close();
              }
            } catch {
              channel.abort(new Error('fake peer gave up'));
            }
          })(),
      });
    },
    { maxInboundStreams: 64 },
  );
  return fake;
}
