// Must-show: inside the sandbox of a job run with a shipped toolchain (what every peer job
// runs with), a job reads nothing outside its toolchain and work directory and opens no
// network connection. The "compiler" is a static probe program shipped as a toolchain of its
// own (packed, installed by the real installer, mounted as any toolchain is); it tries to
// open host files and to connect to a TCP server of this test on loopback, and reports.
// The same probe run on the host succeeds at both: the checks can fail.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../protocol/messages.js';
import { Executor } from '../node/executor/executor.js';
import { readToolchainMounts, type ToolchainMounts } from '../node/executor/toolchain-mounts.js';
import { InputHasher } from '../node/scan/hasher.js';
import { Store } from '../node/store.js';
import { descriptionBytes, DESCRIPTION_PATH } from '../toolchain/description.js';
import { installToolchain } from '../toolchain/unpack.js';
import { fakeDescription, tarOfTree } from './helpers/toolchain-tars.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const log = pino({ level: 'silent' });

const PROBE_C = `
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
/* probe OUTPUT PORT PATH...: reports which paths open for reading and whether 127.0.0.1:PORT
   accepts a connection, on stdout; writes OUTPUT so the job has its output. */
int main(int argc, char **argv) {
  for (int i = 3; i < argc; i++) {
    int fd = open(argv[i], O_RDONLY);
    if (fd >= 0) { printf("readable %s\\n", argv[i]); close(fd); }
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0) printf("connected\\n");
  FILE *out = fopen(argv[1], "w");
  if (!out) return 2;
  fputs("done\\n", out);
  return fclose(out) == 0 ? 0 : 3;
}
`;

const bwrapMissing = spawnSync('bwrap', ['--version']).error !== undefined;

describe.skipIf(bwrapMissing)('sandbox of a job with a shipped toolchain', () => {
  let probe: string | undefined;
  let server: net.Server;
  let port: number;
  let accepted = 0;
  let store: Store;
  let executor: Executor;
  let mounts: ToolchainMounts;
  let home: string;

  beforeAll(async () => {
    const build = tempDir();
    writeFileSync(path.join(build, 'probe.c'), PROBE_C);
    const compiled = spawnSync('gcc', ['-static', '-O1', 'probe.c', '-o', 'probe'], { cwd: build, encoding: 'utf8' });
    if (compiled.status !== 0) {
      console.log(`skipped: cannot link a static probe (${compiled.stderr.split('\n')[0]})`);
      return;
    }
    probe = path.join(build, 'probe');
    // The probe as a toolchain: /usr/bin/meshcc-probe and the description, nothing else.
    const tree = tempDir();
    mkdirSync(path.join(tree, 'usr/bin'), { recursive: true });
    mkdirSync(path.join(tree, '.meshcc'));
    copyFileSync(probe, path.join(tree, 'usr/bin/meshcc-probe'));
    chmodSync(path.join(tree, 'usr/bin/meshcc-probe'), 0o755);
    writeFileSync(path.join(tree, DESCRIPTION_PATH), descriptionBytes(fakeDescription({ compiler: '/usr/bin/meshcc-probe', driver: '/usr/bin/meshcc-probe' })));
    const tar = await tarOfTree(tree);
    home = tempDir();
    const installed = await installToolchain({ cacheDir: path.join(home, 'toolchains'), id: tar.id, source: Readable.from([tar.bytes]) });
    mounts = readToolchainMounts(installed.root);
    store = new Store(path.join(home, 'store'), 64 << 20, log);
    await store.start();
    executor = new Executor({ store, workDir: path.join(home, 'jobs'), slots: 1, timeoutMs: 30_000, log });
    await executor.start();
    server = net.createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await executor?.stop();
    server?.close();
  });

  it('reads its inputs and its toolchain only: no host file, no store, nothing beside the job; connects nowhere', async () => {
    if (!probe) return;
    const dir = tempDir();
    writeFileSync(path.join(dir, 'input.txt'), 'an input of the job\n');
    writeFileSync(path.join(dir, 'beside.txt'), 'beside the job, not an input\n');
    const input = await new InputHasher(store).hash(path.join(dir, 'input.txt'));
    const tried = [
      path.join(dir, 'input.txt'),
      '/usr/bin/meshcc-probe',
      path.join(dir, 'beside.txt'),
      '/etc/passwd',
      '/etc/hostname',
      '/usr/bin/gcc',
      '/usr/include/stdio.h',
      '/proc/1/root/etc/passwd',
      store.pathOf(input.hash),
      path.join(home, 'toolchains'),
    ];
    const argv = ['meshcc-probe', path.join(dir, 'out.txt'), String(port), ...tried];
    const job: Job = { id: 'probe', compiler: '/usr/bin/meshcc-probe', argv, cwd: dir, env: {}, inputs: [input], listings: [], dirs: [dir], outputs: [path.join(dir, 'out.txt')] };
    const result = await executor.run(job, undefined, mounts);
    expect(result.stderr.toString()).toBe('');
    expect(result.exit).toBe(0);
    expect(result.stdout.toString()).toBe(`readable ${path.join(dir, 'input.txt')}\nreadable /usr/bin/meshcc-probe\n`);
    expect(accepted).toBe(0);

    // On the host, the same probe reads them and connects.
    const host = await run(probe, [path.join(dir, 'host-out.txt'), String(port), ...tried]);
    for (const p of [path.join(dir, 'beside.txt'), '/etc/passwd', store.pathOf(input.hash)]) expect(host.stdout).toContain(`readable ${p}\n`);
    expect(host.stdout).toContain('connected\n');
    expect(accepted).toBe(1);
  });
});
