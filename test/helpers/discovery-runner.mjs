// Runs one LanDiscovery (from the built dist/) and prints JSON lines on stdout:
//   {"event":"started","at":<ms epoch>}  then  {"event":"peer","peerId":...,"addresses":[...],"at":<ms epoch>}
// per newly seen peer. Usage: node discovery-runner.mjs <meshId> <peerId> <multiaddr>...
// Runs until killed (SIGTERM stops discovery cleanly).
import { pino } from 'pino';
import { LanDiscovery } from '../../dist/node/mesh/discovery.js';

const [meshId, peerId, ...addrs] = process.argv.slice(2);
if (!meshId || !peerId) {
  console.error('usage: discovery-runner.mjs <meshId> <peerId> [multiaddr...]');
  process.exit(2);
}
const log = pino({ level: process.env.MESHCC_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const seen = new Set();
const d = new LanDiscovery({
  meshId,
  peerId,
  addresses: () => addrs,
  log,
  intervalMs: 1000,
  onPeer: (peer) => {
    if (seen.has(peer.peerId)) return;
    seen.add(peer.peerId);
    process.stdout.write(JSON.stringify({ event: 'peer', ...peer, at: Date.now() }) + '\n');
  },
});
d.start();
process.stdout.write(JSON.stringify({ event: 'started', at: Date.now() }) + '\n');
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    void d.stop().then(() => process.exit(0));
  });
}
