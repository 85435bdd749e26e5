// Resource limits on every sandboxed job: CPU time, address space, file size, no core dumps.
// bubblewrap has no rlimit options: the native spawner sets them between its fork and the exec
// of bubblewrap; where only the Node helper runs (no C compiler built the native one), prlimit
// (util-linux) sets them and execs bubblewrap in its place, so the timeout's kill still reaches
// bubblewrap. prlimit cost +1.4 ms of CPU per job here, next to bubblewrap's ~3.5 ms.
import type { ProgramLimits } from '../spawner/program-limits.js';

export interface ResourceLimits {
  /** CPU seconds per process of the job (each of driver, cc1, as has its own). */
  cpuSeconds: number;
  /** Address space per process. */
  memoryBytes: number;
  /** Largest file the job may write (outputs and temporaries alike). */
  outputFileBytes: number;
}

export const DEFAULT_JOB_MEMORY_BYTES = 8 * 1024 ** 3;
export const DEFAULT_JOB_OUTPUT_FILE_BYTES = 1024 ** 3;

/** What the spawner sets on a job's bubblewrap (and so on everything in its sandbox). */
export function programLimits(limits: ResourceLimits): ProgramLimits {
  const whole = (n: number) => Math.max(1, Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER));
  const cpu = Math.max(1, Math.ceil(limits.cpuSeconds));
  return {
    // SIGXCPU first, so a compiler driver names it; SIGKILL a second later for a job that ignores it.
    cpuSoftSeconds: cpu,
    cpuHardSeconds: cpu + 1,
    addressSpaceBytes: whole(limits.memoryBytes),
    fileSizeBytes: whole(limits.outputFileBytes),
    // SIGXCPU and SIGXFSZ dump core by default: a core file (or a core_pattern helper) per killed job costs much and tells nothing.
    coreBytes: 0,
  };
}

const SIGKILL = 9;
const SIGXCPU = 24;
const SIGXFSZ = 25;

const REASONS = {
  cpu: (l: ResourceLimits) => `the job exceeded its CPU time limit (${l.cpuSeconds} s)`,
  fileSize: (l: ResourceLimits) => `the job wrote a file larger than its limit (${mib(l.outputFileBytes)})`,
  memory: (l: ResourceLimits) => `the job ran out of its memory limit (${mib(l.memoryBytes)})`,
  killed: (l: ResourceLimits) => `the job was killed: past its CPU time limit (${l.cpuSeconds} s) or by the host's out-of-memory killer`,
};

/** What compilers print when one of their programs hit a limit (gcc's driver names the signal
 *  that ended cc1 or as; xmalloc, LLVM and libstdc++ name exhausted memory), matched only at
 *  the start of a line after "prog: " prefixes, so that a quoted source line never matches. */
const LINE_START = String.raw`^(?:[^\s:]+: )*(?:internal compiler error: |fatal error: |error: unable to execute command: |error: )?`;
const LIMIT_MESSAGES = (
  [
    ['CPU time limit exceeded', 'cpu'],
    ['File size limit exceeded|File too large', 'fileSize'],
    ["virtual memory exhausted|out of memory|LLVM ERROR: out of memory|terminate called after throwing an instance of 'std::bad_alloc'|Cannot allocate memory", 'memory'],
    ['Killed(?: |$)', 'killed'],
  ] as const
).map(([text, reason]) => ({ pattern: new RegExp(`${LINE_START}(?:${text})`, 'm'), reason }));

function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}

/** Why a job that ended with `exit` stopped at one of its limits; undefined when it did not
 *  (then its failure is the compile's own). `exit` is bubblewrap's: 128 + signal when the
 *  command itself was killed (clang's in-process cc1), the driver's code when a child was (gcc). */
export function resourceLimitHit(exit: number, stderr: string, limits: ResourceLimits): string | undefined {
  if (exit === 0) return undefined;
  if (exit === 128 + SIGXCPU) return REASONS.cpu(limits);
  if (exit === 128 + SIGXFSZ) return REASONS.fileSize(limits);
  for (const { pattern, reason } of LIMIT_MESSAGES) if (pattern.test(stderr)) return REASONS[reason](limits);
  if (exit === 128 + SIGKILL) return REASONS.killed(limits);
  return undefined;
}
