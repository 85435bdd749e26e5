// The lean spawner's child: a small Node process whose only job is to start programs for the
// agent. Forking costs in proportion to the forking process's memory (measured here: 10 ms of
// CPU per spawn from a 200 MB process, 1.6 ms from a bare Node), and the agent starts a
// scan on every remote job and bubblewrap on every executed one; so it asks this one.
import type { ChildProcess } from 'node:child_process';
import type { SpawnReply, SpawnRequest } from './lean-spawn.js';
import { runChild } from './run-child.js';

const running = new Map<number, ChildProcess>();

process.on('message', (message: SpawnRequest | { id: number; kill: true }) => {
  if ('kill' in message) {
    running.get(message.id)?.kill('SIGKILL');
    return;
  }
  void runChild(message, (child) => running.set(message.id, child)).then((reply: SpawnReply) => {
    running.delete(message.id);
    process.send?.(reply);
  });
});
// The agent went away: take our children with us.
process.on('disconnect', () => {
  for (const child of running.values()) child.kill('SIGKILL');
  process.exit(0);
});
