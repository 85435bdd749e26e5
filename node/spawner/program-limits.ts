// A program's resource limits as the spawners set them: setrlimit between fork and exec in the
// native spawner, prlimit's options where Node starts the program.

/** Resource limits set on a program between fork and exec (setrlimit), as prlimit sets them. */
export interface ProgramLimits {
  cpuSoftSeconds: number;
  cpuHardSeconds: number;
  addressSpaceBytes: number;
  fileSizeBytes: number;
  coreBytes: number;
}

/** prlimit's options for these limits, up to and including `--` (meshcc-spawn takes the same). */
export function limitFlags(limits: ProgramLimits): string[] {
  const whole = (n: number) => String(Math.max(0, Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER)));
  return [
    `--cpu=${whole(limits.cpuSoftSeconds)}:${whole(limits.cpuHardSeconds)}`,
    `--as=${whole(limits.addressSpaceBytes)}`,
    `--fsize=${whole(limits.fileSizeBytes)}`,
    `--core=${whole(limits.coreBytes)}`,
    '--',
  ];
}
