// Runs one misbehaving mesh member (test/helpers/fake-peer.ts, from the built dist/) as a
// process of its own, so that a test can start it inside a network namespace.
//   node fake-peer-runner.mjs <garbage|silent|lying> <mesh key hex> <toolchain id,…> [multiaddr…]
// It listens on every interface, dials each multiaddr given (agents that should list it), then
// prints JSON lines on stdout: {"event":"ready","peerId":…,"addresses":[…]} once, and
// {"event":"jobs","jobsSeen":n} whenever it has seen another job. Runs until SIGTERM.
import { startFakePeer } from '../../dist/test/helpers/fake-peer.js';

const [behaviour, meshKeyHex, toolchains, ...dial] = process.argv.slice(2);
if (!behaviour || !meshKeyHex || !toolchains) {
  console.error('usage: fake-peer-runner.mjs <garbage|silent|lying> <mesh key hex> <toolchain id,…> [multiaddr…]');
  process.exit(2);
}
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const fake = await startFakePeer({ meshKeyHex, toolchains: toolchains.split(','), behaviour, listen: '/ip4/0.0.0.0/tcp/0' });
for (const address of dial) {
  for (let attempt = 1; ; attempt++) {
    try {
      await fake.dial(address);
      break;
    } catch (err) {
      if (attempt >= 20) {
        console.error(`fake peer: cannot dial ${address}: ${err.message}`);
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
say({ event: 'ready', peerId: fake.peerId, addresses: fake.addresses });
let reported = 0;
setInterval(() => {
  if (fake.jobsSeen === reported) return;
  reported = fake.jobsSeen;
  say({ event: 'jobs', jobsSeen: reported });
}, 50);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    void fake.stop().finally(() => process.exit(0));
  });
}
