// @chainsafe/libp2p-yamux 8 answers every data frame it receives with a window update frame,
// even when nearly all of the receive window is left. On a job session or the scheduler's
// stream, where messages are small and many, that is one more frame, one more Noise
// encryption and one more socket write for each message received: a third of the client
// agent's socket writes per job (bench/throughput). Yamux's reference implementation (Go)
// sends an update only once the unacknowledged part reaches half the window, and so do we:
// updates that carry flags (the stream's SYN/ACK) and those after a pause go out as before,
// and the window still grows where data arrives fast, when the next update is sent.
// Imported with the other fixes before libp2p (polyfill.ts).
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';

interface WindowFields {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
}

const prototype = YamuxStream.prototype as unknown as { sendWindowUpdate(this: WindowFields): void };
const sendWindowUpdate = prototype.sendWindowUpdate;
prototype.sendWindowUpdate = function (this: WindowFields) {
  const carriesNoFlags = this.state === StreamState.Established || this.state === StreamState.SYNSent || this.state === StreamState.Finished;
  if (carriesNoFlags && this.recvWindowCapacity * 2 >= this.recvWindow) return;
  sendWindowUpdate.call(this);
};

export {};
