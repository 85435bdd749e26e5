// bench/file-ops: what the file-system operations of a job cost in CPU on this machine, on the
// file system of a directory (the build's, by default the temporary directory's) and on tmpfs
// (/dev/shm) side by side. A cache hit or a remote job creates its outputs, a job root makes
// directories and links, and on some file systems a new inode costs far more than everything
// else the agent does for a hit: this is the figure that says where such a cost belongs.
//
//   node dist/bench/file-ops.js [DIR] [--count N]
//
// Each operation runs N times (500) in a fresh directory; CPU is this process's user + system
// time (getrusage) per operation, wall beside it.
import { closeSync, constants, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const countAt = args.indexOf('--count');
const count = countAt >= 0 ? Number(args[countAt + 1]) : 500;
const given = args.find((a, i) => !a.startsWith('--') && i !== countAt + 1);
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
  for (const dir of work) rmSync(dir, { recursive: true, force: true });
}
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
