// bench/file-ops: what the file-system operations of a job cost in CPU on this machine, on the
// file system of a directory (the build's, by default the temporary directory's) and on tmpfs
// (/dev/shm) side by side. A cache hit or a remote job creates its outputs, a job root makes
// directories and links, and on some file systems a new inode costs far more than everything
// else the agent does for a hit: this is the figure that says where such a cost belongs.
//
//   node dist/bench/file-ops.js [DIR] [--count N] [--busy K]
//
// Each operation runs N times (500) in a fresh directory; CPU is this process's user + system
// time (getrusage) per operation, wall beside it. With --busy K, K other processes create and
// delete files beside it meanwhile, as a build's compilers do: on ext4 that is what makes a
// new inode dear.
import { closeSync, constants, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const countAt = args.indexOf('--count');
const count = countAt >= 0 ? Number(args[countAt + 1]) : 500;
const busyAt = args.indexOf('--busy');
const busy = busyAt >= 0 ? Number(args[busyAt + 1]) : 0;
const given = args.find((a, i) => !a.startsWith('--') && i !== countAt + 1 && i !== busyAt + 1);
const places = [given ?? os.tmpdir(), '/dev/shm'];
const object = Buffer.alloc(100 * 1024, 7);
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

type Op = [string, (dir: string, i: number) => void];
const ops: Op[] = [
  ['create an empty file (O_EXCL)', (d, i) => closeSync(openSync(`${d}/e${i}`, CREATE, 0o644))],
  ['create and write 100 KB (an object)', (d, i) => {
    const fd = openSync(`${d}/o${i}`, CREATE, 0o644);
    writeSync(fd, object);
    closeSync(fd);
  }],
  ['unlink a 100 KB file', (d, i) => unlinkSync(`${d}/o${i}`)],
  ['mkdir', (d, i) => mkdirSync(`${d}/d${i}`)],
  ['symlink', (d, i) => symlinkSync('target', `${d}/s${i}`)],
  ['hard link', (d, i) => linkSync(`${d}/e0`, `${d}/l${i}`)],
  ['rename', (d, i) => renameSync(`${d}/e${i}`, `${d}/r${i}`)],
  ['stat', (d, i) => statSync(`${d}/r${i}`)],
];

function measure(dir: string, run: Op[1]): { cpuUs: number; wallUs: number } {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) run(dir, i);
  const cpu = process.cpuUsage(cpu0);
  return { cpuUs: (cpu.user + cpu.system) / count, wallUs: Number(process.hrtime.bigint() - t0) / 1000 / count };
}

const rows: string[][] = [];
const work = places.map((p) => mkdtempSync(path.join(p, 'meshcc-file-ops-')));
const churners: ChildProcess[] = [];
for (let k = 0; k < busy; k++) {
  const churn = `const fs = require('fs'); const d = ${JSON.stringify(path.join(work[0]!, `busy${k}`))}; fs.mkdirSync(d);
    for (let i = 0; ; i++) { const f = d + '/f' + (i % 300); try { fs.unlinkSync(f); } catch {} fs.writeFileSync(f, Buffer.alloc(50000)); }`;
  churners.push(spawn(process.execPath, ['-e', churn], { stdio: 'ignore' }));
}
if (busy) await new Promise((r) => setTimeout(r, 500));
try {
  for (const [name, run] of ops) {
    const row = [name];
    for (const dir of work) {
      const { cpuUs, wallUs } = measure(dir, run);
      row.push(`${cpuUs.toFixed(0)} µs CPU (${wallUs.toFixed(0)} wall)`);
    }
    rows.push(row);
  }
} finally {
  for (const child of churners) child.kill('SIGKILL');
  await Promise.all(churners.map((child) => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)))));
  for (const dir of work) rmSync(dir, { recursive: true, force: true });
}
if (busy) console.log(`(${busy} other processes creating and deleting 50 KB files meanwhile, in the first directory)`);
const header = ['per operation', ...places.map((p) => `${p} (${fsOf(p)})`)];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));

function fsOf(dir: string): string {
  try {
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    const real = realpathSync(dir);
    const best = mounts.filter((m) => m[1] && (real === m[1] || real.startsWith(m[1] === '/' ? '/' : `${m[1]}/`))).sort((a, b) => b[1]!.length - a[1]!.length)[0];
    return best ? `${best[2]}, ${best[3]}` : 'unknown';
  } catch {
    return 'unknown';
  }
}
