/** An error a user (or a peer) can act on: a stable code and a one-line message. */
export class MeshccError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'MeshccError';
  }
}

/** The bytes or the shape of a message were wrong. */
export class ProtocolError extends MeshccError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}
