// Why a toolchain tarball was refused. One line each: it ends up in a log line and in the
// reason a job fell back to a local compile.

export type RejectionReason =
  | 'bad-id'
  | 'absolute-path'
  | 'parent-reference'
  | 'bad-name'
  | 'entry-type'
  | 'link-escape'
  | 'through-link'
  | 'duplicate'
  | 'missing-parent'
  | 'file-too-large'
  | 'too-large'
  | 'too-many-entries'
  | 'description'
  | 'platform'
  | 'hash-mismatch'
  | 'truncated'
  | 'malformed'
  | 'io';

export class ToolchainRejected extends Error {
  override readonly name = 'ToolchainRejected';

  constructor(
    readonly reason: RejectionReason,
    detail: string,
  ) {
    super(`toolchain rejected (${reason}): ${detail.replace(/\s+/g, ' ').trim()}`);
  }
}
