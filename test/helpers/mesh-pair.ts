// Two real libp2p mesh nodes with one mesh key on loopback, for tests of what runs on a stream
// between two agents; stopNodes() ends every node made.
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { createMeshNode, type MeshNode } from '../../node/mesh/node.js';

const log = pino({ level: 'silent' });
const made: MeshNode[] = [];

/** A client node and a peer node of one mesh, not yet dialled. */
export async function meshPair(): Promise<{ client: MeshNode; peer: MeshNode }> {
  const meshKey = randomBytes(32);
  const make = async () => {
    const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log });
    made.push(node);
    return node;
  };
  return { client: await make(), peer: await make() };
}

export async function stopNodes(): Promise<void> {
  await Promise.all(made.splice(0).map((n) => n.stop()));
}
