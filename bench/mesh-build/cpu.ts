// Where CPU and bytes went, read from the kernel rather than from any tool's own accounting, so
// that meshcc, distcc and icecream are measured by one yardstick: /proc/<pid>/stat for a
// daemon and what it reaped, /proc/stat for the whole machine (busy, and stolen by the
// hypervisor: a VM's neighbours, the main reason wall ratios vary between runs), and the
// client namespace's interface counters for what crossed the wire.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function clkTck(): number {
  return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
}

export interface TreeCpu {
  /** utime + stime of the process and of its live descendants: the daemons themselves. */
  own: number;
  /** cutime + cstime of the same processes: what they waited for (compilers, per-job helpers). */
  reaped: number;
}

function statFields(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return undefined; // exited between listing and reading
  }
}

/** A process's live children (none where the kernel has no children file: live helpers are then missed). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU seconds of a process and its live descendants, split into their own and what they reaped. */
export function processTreeSplitCpuS(pid: number, tck: number): TreeCpu {
  const fields = statFields(pid);
  if (!fields) return { own: 0, reaped: 0 };
  const sum: TreeCpu = {
    own: (Number(fields[11]) + Number(fields[12])) / tck,
    reaped: (Number(fields[13]) + Number(fields[14])) / tck,
  };
  for (const child of childrenOf(pid)) {
    const c = processTreeSplitCpuS(child, tck);
    sum.own += c.own;
    sum.reaped += c.reaped;
  }
  return sum;
}

/** CPU seconds that kept sandboxes' first processes (`meshcc-spawn --inside`, descendants of
 *  pid) reaped: the compiles run in them, not the sandboxes' own cost. */
export function keptSandboxCompilesCpuS(pid: number, tck: number): number {
  let sum = 0;
  for (const child of childrenOf(pid)) {
    try {
      // argv [its path, '--inside']; bubblewrap's own command line ends with the same words.
      if (readFileSync(`/proc/${child}/cmdline`, 'latin1').split('\0')[1] === '--inside') {
        const fields = statFields(child);
        if (fields) sum += (Number(fields[13]) + Number(fields[14])) / tck;
        continue;
      }
    } catch {
      continue;
    }
    sum += keptSandboxCompilesCpuS(child, tck);
  }
  return sum;
}

/** CPU seconds of a process, its reaped children (utime + stime + cutime + cstime), and of its
 *  live descendants likewise (the agent's spawner helper, which starts the scans, lives on). */
export function processTreeCpuS(pid: number, tck: number): number {
  const t = processTreeSplitCpuS(pid, tck);
  return t.own + t.reaped;
}

/** CPU seconds of a process's main thread alone (an agent's event loop; its workers are the rest of processOwnCpuS). */
export function mainThreadCpuS(pid: number, tck: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / tck;
  } catch {
    return 0;
  }
}

/** CPU seconds of one process alone (all its threads, no children). */
export function processOwnCpuS(pid: number, tck: number): number {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / tck : 0;
}

/** CPU seconds of the whole machine: busy (user, nice, system, irq, softirq) and stolen by
 *  the hypervisor (a VM's neighbours: time neither build could use). */
export function machineCpuS(tck: number): { busy: number; steal: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]!) / tck, steal: cpu[7]! / tck };
}

/** Bytes through an interface of a network namespace so far (the kernel's counters, all protocols). */
export function interfaceBytes(ns: string, iface: string): { sent: number; received: number } {
  const out = execFileSync('ip', ['-n', ns, '-j', '-s', 'link', 'show', iface], { encoding: 'utf8' });
  const link = (JSON.parse(out) as { stats64?: { rx?: { bytes?: number }; tx?: { bytes?: number } } }[])[0];
  return { sent: link?.stats64?.tx?.bytes ?? 0, received: link?.stats64?.rx?.bytes ?? 0 };
}
