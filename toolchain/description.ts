// The description a toolchain tarball carries in `.meshcc/toolchain.json`: what the compiler
// is, which path runs it, and the machine it runs on, so a peer never installs a toolchain it
// cannot execute. Written as canonical JSON (sorted keys, no spaces) because its bytes are part
// of the tarball, and the tarball's sha256 is the toolchain id.
import { open } from 'node:fs/promises';
import { z } from 'zod';

export const TAR_SCHEME = 'meshcc-toolchain-tar-v1';
export const DESCRIPTION_PATH = '.meshcc/toolchain.json';
/** Far above any real description; bounds what an unpacker holds in memory for it. */
export const DESCRIPTION_MAX_BYTES = 64 * 1024;

const absolutePath = z.string().min(2).max(4096).startsWith('/');

export const ToolchainDescriptionSchema = z.strictObject({
  scheme: z.literal(TAR_SCHEME),
  family: z.enum(['gcc', 'clang']),
  mode: z.enum(['c', 'c++']),
  version: z.string().min(1).max(200),
  target: z.string().min(1).max(200),
  /** the path the compiler is invoked by (e.g. /usr/bin/gcc), present in the tarball */
  compiler: absolutePath,
  /** the real path of the driver */
  driver: absolutePath,
  /** Node's name for the CPU the programs are built for (process.arch) */
  arch: z.string().min(1).max(50),
  /** Node's name for the OS (process.platform) */
  os: z.string().min(1).max(50),
});

export type ToolchainDescription = z.infer<typeof ToolchainDescriptionSchema>;

export interface Platform {
  arch: string;
  os: string;
}

export function hostPlatform(): Platform {
  return { arch: process.arch, os: process.platform };
}

/** The exact bytes of `.meshcc/toolchain.json`. */
export function descriptionBytes(description: ToolchainDescription): Buffer {
  const sorted = Object.fromEntries(Object.entries(description).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(`${JSON.stringify(sorted)}\n`);
}

/** The description in these bytes, or a one-line reason why they are not one. */
export function parseDescription(bytes: Buffer): { description: ToolchainDescription } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { problem: `${DESCRIPTION_PATH} is not JSON` };
  }
  const parsed = ToolchainDescriptionSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `${DESCRIPTION_PATH} is malformed (${issue?.path.join('.') || 'root'}: ${issue?.message ?? 'invalid'})` };
  }
  return { description: parsed.data };
}

// ELF e_machine values and Node's names for them; 32/64-bit and byte order split some.
const EM_386 = 3;
const EM_MIPS = 8;
const EM_PPC = 20;
const EM_PPC64 = 21;
const EM_S390 = 22;
const EM_ARM = 40;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_RISCV = 243;
const EM_LOONGARCH = 258;

function nodeArch(machine: number, is64: boolean, littleEndian: boolean): string {
  switch (machine) {
    case EM_X86_64:
      return 'x64';
    case EM_AARCH64:
      return 'arm64';
    case EM_386:
      return 'ia32';
    case EM_ARM:
      return 'arm';
    case EM_RISCV:
      return is64 ? 'riscv64' : 'riscv32';
    case EM_PPC64:
      return 'ppc64';
    case EM_PPC:
      return 'ppc';
    case EM_S390:
      return is64 ? 's390x' : 's390';
    case EM_MIPS:
      return is64 ? (littleEndian ? 'mips64el' : 'mips64') : littleEndian ? 'mipsel' : 'mips';
    case EM_LOONGARCH:
      return 'loong64';
    default:
      // Never equal to a process.arch, so such a toolchain is installed nowhere.
      return `elf-machine-${machine}`;
  }
}

/** The architecture an ELF executable is built for, in process.arch's words. */
export async function elfArch(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(20);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead < head.length || !head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
      throw new Error(`${file} is not an ELF file`);
    }
    const is64 = head[4] === 2;
    const littleEndian = head[5] === 1;
    const machine = littleEndian ? head.readUInt16LE(18) : head.readUInt16BE(18);
    return nodeArch(machine, is64, littleEndian);
  } finally {
    await handle.close();
  }
}
