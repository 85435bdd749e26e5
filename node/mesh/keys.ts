// The mesh key (the shared secret that defines a mesh) and this agent's libp2p identity.
// Both live in the agent's home, mode 0600, created on first use.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { MeshccError } from '../../protocol/errors.js';

export const MESH_KEY_FILE = 'mesh.key';
export const IDENTITY_FILE = 'identity.key';
export const MESH_KEY_BYTES = 32;

const HEX_KEY = /^[0-9a-f]{64}$/;

export function parseMeshKeyHex(text: string, where: string): Uint8Array {
  const hex = text.trim().toLowerCase();
  if (!HEX_KEY.test(hex)) {
    throw new MeshccError('bad-mesh-key', `${where}: a mesh key is 64 hex characters (32 bytes)`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Writes data with mode 0600 to a fresh temporary file beside `file`; returns its path. */
async function writeTempSecret(file: string, data: string | Uint8Array): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
    await fs.chmod(tmp, 0o600);
    return tmp;
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Write a file with mode 0600 atomically (temp file + rename), so a crash never leaves half a key. */
async function writeSecret(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = await writeTempSecret(file, data);
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Like writeSecret, but never replaces an existing file (two agents racing on first start). */
async function createSecret(file: string, data: string | Uint8Array): Promise<boolean> {
  const tmp = await writeTempSecret(file, data);
  try {
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The mesh key of this home (`mesh.key`, hex), created with 32 random bytes on first use. */
export async function loadOrCreateMeshKey(home: string): Promise<Uint8Array> {
  const file = path.join(home, MESH_KEY_FILE);
  for (;;) {
    const existing = await readIfExists(file);
    if (existing) return parseMeshKeyHex(existing.toString('utf8'), file);
    const key = randomBytes(MESH_KEY_BYTES);
    if (await createSecret(file, key.toString('hex') + '\n')) return new Uint8Array(key);
  }
}

/** Replace this home's mesh key (joining another mesh). `hex` must be 64 hex characters. */
export async function setMeshKey(home: string, hex: string): Promise<Uint8Array> {
  const key = parseMeshKeyHex(hex, 'mesh key');
  await writeSecret(path.join(home, MESH_KEY_FILE), Buffer.from(key).toString('hex') + '\n');
  return key;
}

/** A public name for a mesh, derived from its key one-way: safe to log, advertise and print. */
export function meshId(key: Uint8Array): string {
  return createHash('sha256').update('meshcc mesh id\0').update(key).digest('hex').slice(0, 16);
}

/**
 * The private network's pre-shared key (libp2p PSK v1, 32 bytes), derived from the mesh key
 * (a separate hash, so the PSK is never the raw mesh key).
 */
export function pnetKey(key: Uint8Array): Uint8Array {
  if (key.length !== MESH_KEY_BYTES) {
    throw new MeshccError('bad-mesh-key', `a mesh key is ${MESH_KEY_BYTES} bytes, got ${key.length}`);
  }
  return new Uint8Array(createHash('sha256').update('meshcc pnet psk\0').update(key).digest());
}

/** The same key as a swarm key file for @libp2p/pnet's preSharedKey (what agents before
 *  node/mesh/psk-stream.ts used; tests check that both still talk). */
export function swarmKey(key: Uint8Array): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${Buffer.from(pnetKey(key)).toString('hex')}`);
}

/** This agent's Ed25519 identity (`identity.key`, protobuf), so its peer id survives restarts. */
export async function loadOrCreateIdentity(home: string): Promise<PrivateKey> {
  const file = path.join(home, IDENTITY_FILE);
  for (;;) {
    const existing = await readIfExists(file);
    if (existing) {
      try {
        return privateKeyFromProtobuf(new Uint8Array(existing));
      } catch (err) {
        throw new MeshccError(
          'bad-identity',
          `${file} is not a libp2p private key (${(err as Error).message}); move it away to get a new identity`,
        );
      }
    }
    const key = await generateKeyPair('Ed25519');
    if (await createSecret(file, privateKeyToProtobuf(key))) return key;
  }
}
