// A node as agents built it before node/mesh/psk-stream.ts: the knock, then @libp2p/pnet's own
// protector. Members of a mesh upgrade one at a time, so the two must keep talking. (As a
// listener it takes any 32-byte knock: enough for a fixture.)
import '../../node/mesh/polyfill.js';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { byteStream } from '@libp2p/utils';
import { createLibp2p, type Libp2p } from 'libp2p';
import { swarmKey } from '../../node/mesh/keys.js';
import { createKnock, KNOCK_BYTES } from '../../node/mesh/protector.js';

class LegacyProtector implements ConnectionProtector {
  constructor(
    private readonly pnet: ConnectionProtector,
    private readonly meshKey: Uint8Array,
  ) {}

  async protect(conn: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    if (conn.direction === 'outbound') {
      if (!conn.send(createKnock(this.meshKey))) await conn.onDrain(options);
      return this.pnet.protect(conn, options);
    }
    const bytes = byteStream(conn);
    await bytes.read({ bytes: KNOCK_BYTES, ...options });
    return this.pnet.protect(bytes.unwrap(), options);
  }
}

export async function createLegacyNode(meshKey: Uint8Array): Promise<Libp2p> {
  const pnet = preSharedKey({ psk: swarmKey(meshKey) });
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: () => new LegacyProtector(pnet(), meshKey),
    services: { identify: identify(), ping: ping() },
  });
}
