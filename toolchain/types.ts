// The description of a toolchain: which files a compile with this compiler may execute or
// load, with their content hashes, and the id derived from them (toolchain-id.ts).

export type ToolchainFamily = 'gcc' | 'clang';

export interface ToolchainFile {
  /**
   * What the file is to the compiler: 'driver', a gcc program ('cc1', 'cc1plus', 'collect2',
   * 'lto-wrapper', 'as'), 'lto-plugin', 'specs', 'loader' (the dynamic loader) or 'lib' (a
   * shared library one of the others loads).
   */
  role: string;
  /**
   * Where the compiler finds it: the real path for the driver and gcc's programs; for 'lib'
   * and 'loader' the path the dynamic loader opens (may be a symlink: size and hash are of the
   * file it points to, and its basename is the name the loader looks for).
   */
  path: string;
  size: number;
  /** sha256 (hex) of the content */
  hash: string;
  executable: boolean;
}

export interface Toolchain {
  /** sha256 (hex) over the canonical description of `files` (see toolchain-id.ts) */
  id: string;
  /** the real path of the driver */
  driver: string;
  family: ToolchainFamily;
  /**
   * The language the driver assumes from the name it is invoked by: clang++ (any name ending
   * in ++ after the version) compiles .c files as C++. For gcc the binary decides (g++ is a
   * binary of its own), so it is informational there.
   */
  mode: 'c' | 'c++';
  version: string;
  target: string;
  files: ToolchainFile[];
}

export interface ToolchainLog {
  debug(obj: object, msg: string): void;
}
