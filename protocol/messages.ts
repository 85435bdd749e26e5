// The single list of every meshcc message, each with its validation and limits beside it.
// Field names are short on the client socket because the C client writes them by hand.
import { z } from 'zod';
import { ProtocolError } from './errors.js';

export const PROTOCOL_VERSION = 1;

export const LIMITS = {
  /** Largest frame the agent accepts on its client socket (argv + environment). */
  clientFrameBytes: 8 * 1024 * 1024,
  argvEntries: 65_536,
  argBytes: 128 * 1024,
  envEntries: 4096,
  pathBytes: 4096,
  /** stdout/stderr of one compile, as returned to a client. */
  diagnosticsBytes: 64 * 1024 * 1024,
  inputsPerJob: 200_000,
  outputsPerJob: 64,
  outputBytes: 1024 * 1024 * 1024,
  /** An executor admits this many jobs per slot: the extra ones fetch their inputs and build
   *  their job roots while the others compile, so a slot never idles waiting for the network. */
  jobsPerSlot: 2,
} as const;

const path = z.string().min(1).max(LIMITS.pathBytes);
const absolutePath = path.refine((p) => p.startsWith('/'), 'must be an absolute path');
const arg = z.string().max(LIMITS.argBytes);
const env = z
  .record(z.string().max(LIMITS.argBytes), z.string().max(LIMITS.argBytes))
  .refine((e) => Object.keys(e).length <= LIMITS.envEntries, 'too many environment entries');
export const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes');
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex');

// ---- client socket: client → agent -------------------------------------------------

/** One compiler invocation, sent by the native client (or `meshcc cc`). */
export const CompileRequest = z.object({
  t: z.literal('compile'),
  v: z.number().int(),
  cwd: absolutePath,
  /** argv[0] is the compiler as the build named it (gcc, /usr/bin/cc, …). */
  argv: z.array(arg).min(1).max(LIMITS.argvEntries),
  /** The real compiler the client resolved (its own directory skipped on PATH). */
  compiler: absolutePath,
  env,
  umask: z.number().int().min(0).max(0o777).optional(),
  /** Whether the client's stderr is a terminal (colour decisions). */
  tty: z.boolean().optional(),
  /** When the client started, CLOCK_MONOTONIC µs: a file looked at since is as this compile would see it. */
  startedUs: z.union([z.number().int().nonnegative(), z.bigint().nonnegative()]).transform(Number).optional(), // msgpack's int64 arrives as a bigint
  /** The client's uid: one of the agent's own can write a cached result's outputs from the store itself (ResultReply.copy). */
  uid: z.number().int().nonnegative().optional(),
});
export type CompileRequest = z.infer<typeof CompileRequest>;

/** Sent by a client that ran the compiler itself, before it closes the lease. */
export const LocalDone = z.object({ t: z.literal('done'), exit: z.number().int() });
export type LocalDone = z.infer<typeof LocalDone>;

export const StatsQuery = z.object({ t: z.literal('stats'), v: z.number().int() });
export const PingQuery = z.object({ t: z.literal('ping'), v: z.number().int() });
export const StatusQuery = z.object({ t: z.literal('status'), v: z.number().int() });

/** `meshcc toolchain list|create|prune` while an agent runs (it owns the toolchain cache). */
export const ToolchainQuery = z.object({
  t: z.literal('toolchains'),
  v: z.number().int(),
  op: z.enum(['list', 'create', 'prune']),
  /** create: the compiler to pack, as an absolute path */
  compiler: absolutePath.optional(),
  /** prune: keep at most this many bytes of toolchains not in use */
  maxBytes: z.number().int().nonnegative().optional(),
});
export type ToolchainQuery = z.infer<typeof ToolchainQuery>;

/** `meshcc monitor` and `meshcc top`: where the monitor is served (and serve it on `listen` too). */
export const MonitorQuery = z.object({
  t: z.literal('monitor'),
  v: z.number().int(),
  listen: z.object({ host: z.string().min(1).max(255), port: z.number().int().min(0).max(65535) }).optional(),
});

/** `meshcc invite|join|members|revoke`: the agent holds the identity, the key and the member list. */
export const MembersQuery = z.object({
  t: z.literal('members'),
  v: z.number().int(),
  op: z.enum(['list', 'invite', 'join', 'revoke']),
  /** invite: how long the token is valid (ms) */
  validMs: z.number().int().positive().max(365 * 86_400_000).optional(),
  /** join: the invitation */
  token: z.string().max(16 * 1024).optional(),
  /** join: leave the mesh this agent belongs to, for the one of the token */
  leave: z.boolean().optional(),
  /** revoke: whom */
  peer: z.string().max(128).optional(),
});
export type MembersQuery = z.infer<typeof MembersQuery>;

export const ClientMessage = z.discriminatedUnion('t', [CompileRequest, LocalDone, StatsQuery, PingQuery, StatusQuery, ToolchainQuery, MonitorQuery, MembersQuery]);
export type ClientMessage = z.infer<typeof ClientMessage>;

// ---- client socket: agent → client -------------------------------------------------

/** Run the original command yourself; keep the connection open while it runs (the slot lease). */
export type RunLocalReply = { t: 'run-local'; reason: string };
/** The agent compiled it and wrote the outputs; print these and exit with `exit`. */
export type ResultReply = {
  t: 'result';
  exit: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** Outputs the client writes itself, each from an object of the agent's store whose bytes the
   *  agent checked: [object, output path, size, executable]. Absent: the agent wrote them all. */
  copy?: [string, string, number, boolean][];
};
/** Something went wrong in meshcc; the client runs the compiler itself. */
export type ErrorReply = { t: 'error'; code: string; message: string };
export type PongReply = { t: 'pong'; v: number; pid: number };
export type AgentReply =
  | RunLocalReply
  | ResultReply
  | ErrorReply
  | PongReply
  | { t: 'stats'; stats: unknown }
  | { t: 'status'; agents: unknown[] }
  | { t: 'toolchains'; toolchains: unknown[]; created?: string; removed?: string[] }
  | { t: 'monitor'; urls: { url: string; open: boolean }[]; token: string }
  | ({ t: 'members' } & Record<string, unknown>);

// ---- jobs: what an executor runs ---------------------------------------------------

export const InputFile = z.object({
  path: absolutePath,
  hash: sha256,
  size: z.number().int().nonnegative(),
  executable: z.boolean(),
});
export type InputFile = z.infer<typeof InputFile>;

/** A search directory's entries, so that __has_include and missing-directory warnings match. */
export const DirListing = z.object({
  path: absolutePath,
  entries: z.array(z.object({ name: z.string().min(1).max(255), dir: z.boolean() })).max(LIMITS.inputsPerJob),
});
export type DirListing = z.infer<typeof DirListing>;

export const Job = z.object({
  id: z.string().min(1).max(64),
  /** The compiler as the client invoked it (an absolute path, present in the toolchain's tree). */
  compiler: absolutePath,
  argv: z.array(arg).min(1).max(LIMITS.argvEntries),
  cwd: absolutePath,
  env,
  inputs: z.array(InputFile).max(LIMITS.inputsPerJob),
  listings: z.array(DirListing).max(LIMITS.inputsPerJob),
  /** Directories that must exist (path components the compiler walks through). */
  dirs: z.array(absolutePath).max(LIMITS.inputsPerJob),
  /** Files the command is expected to write; new files beside them are collected too. */
  outputs: z.array(absolutePath).min(1).max(LIMITS.outputsPerJob),
  timeoutMs: z.number().int().positive().optional(),
});
export type Job = z.infer<typeof Job>;

export const OutputFile = z.object({ path: absolutePath, data: bytes, executable: z.boolean() });
export type OutputFile = z.infer<typeof OutputFile>;

export const JobResult = z.object({
  id: z.string(),
  exit: z.number().int(),
  stdout: bytes,
  stderr: bytes,
  outputs: z.array(OutputFile).max(LIMITS.outputsPerJob),
});
export type JobResult = z.infer<typeof JobResult>;

/** Validate an incoming message; the error names the first bad field in one line. */
export function parseMessage<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.length ? issue.path.join('.') : 'message';
  throw new ProtocolError('bad-message', `invalid ${where}: ${issue.message}`);
}

// Membership (who is alive, their cards) and loads (to the scheduler only): swim-messages.ts.

// ---- mesh: remote jobs (client agent ⇄ peer agent, one /meshcc/job/2 stream per client and
// peer, the job session: node/remote/job-session.ts) ----------------------------------------
// Every message below also carries `j`, the job's number in the session, chosen by the client.
//   client → peer   cancel   the client gave up on the job (a hedge won, the job timed out)
//
//   client → peer   job      the job (msgpack, compressed) and the toolchain it needs
//   peer → client   need     the store files it lacks (only those; [] when it has all)
//                   refused  it will not take the job (busy, unknown toolchain): try elsewhere
//   client → peer   blob*    exactly the files asked for, in chunks, compressed
//   peer → client   (need/blob again while another job's transfer of a shared file failed)
//   peer → client   result   exit code, stdout, stderr, the output files' names and sizes,
//                   output*  then every output file in chunks, compressed
//                   failed   it could not run the job faithfully: retry elsewhere or locally

export const MESH_JOB_LIMITS = {
  /** Largest frame on a job stream: a chunk, or a result with diagnostics. */
  frameBytes: LIMITS.diagnosticsBytes + 1024 * 1024,
  /** Uncompressed bytes per blob or output chunk. */
  chunkBytes: 1024 * 1024,
  /** Largest (compressed) job description. */
  jobBytes: 32 * 1024 * 1024,
  /** Largest single input file. */
  inputFileBytes: 512 * 1024 * 1024,
  /** Files an offer carries at most, their bytes (compressed), and the largest such file (raw). */
  inlineBlobs: 64,
  inlineBlobBytes: 1024 * 1024,
  inlineFileBytes: 256 * 1024,
  textBytes: 4096,
} as const;

const text = z.string().max(MESH_JOB_LIMITS.textBytes);
const chunk = bytes.refine((b) => b.length <= MESH_JOB_LIMITS.chunkBytes + 65_536, 'chunk too large');

/** A job offered to a peer. `body` is the msgpack of a Job, compressed when `z`. */
export const JobOffer = z.object({
  t: z.literal('job'),
  v: z.number().int(),
  toolchain: sha256,
  z: z.boolean(),
  body: bytes.refine((b) => b.length <= MESH_JOB_LIMITS.jobBytes, 'job too large'),
  /** The body was compressed with an earlier offer's body (by its sha256) as dictionary:
   *  consecutive jobs of a build differ little, so each costs the peer a few hundred bytes. */
  dict: sha256.optional(),
  /** Brotli quality for the outputs: the client asks for more over a slow link. */
  quality: z.number().int().min(0).max(11).optional(),
  /** Files the client hashed for the first time for this job (its source, usually), whole and
   *  compressed: no peer can hold them yet, so they come with the offer instead of being asked for. */
  blobs: z
    .array(z.object({ hash: sha256, z: z.boolean(), data: bytes }))
    .max(MESH_JOB_LIMITS.inlineBlobs)
    .refine((b) => b.reduce((n, f) => n + f.data.length, 0) <= MESH_JOB_LIMITS.inlineBlobBytes, 'inline files too large')
    .optional(),
});
export type JobOffer = z.infer<typeof JobOffer>;

/** A job as offered (protocol/input-tree.ts): files inline by directory, listings as the
 *  [hash, size] of chunks in the store. */
/** Inputs named by number in the input table the client and the peer share (node/remote/offer-table.ts). */
export const TableRefs = z.object({
  table: z.string().regex(/^[0-9a-f]{16}$/),
  /** entries this offer defines: [number, path, sha256, size, executable] */
  defs: z.array(z.tuple([z.number().int().nonnegative(), absolutePath, bytes.refine((b) => b.length === 32, 'must be a 32-byte sha256'), z.number().int().nonnegative(), z.boolean()])).max(LIMITS.inputsPerJob),
  /** the job's inputs: their numbers in ascending order, each as the difference from the one before */
  refs: z.array(z.number().int().nonnegative()).max(LIMITS.inputsPerJob),
});
export type TableRefs = z.infer<typeof TableRefs>;

export const WireJob = Job.extend({
  table: TableRefs.optional(),
  files: z.array(z.tuple([absolutePath, z.array(z.tuple([z.string().min(1).max(255), bytes, z.number().int().nonnegative(), z.boolean()])).max(LIMITS.inputsPerJob)])).max(LIMITS.inputsPerJob),
  tree: z
    .array(z.tuple([bytes.refine((b) => b.length === 32, 'must be a 32-byte sha256'), z.number().int().nonnegative().max(MESH_JOB_LIMITS.jobBytes)]))
    .max(LIMITS.inputsPerJob),
});
export type WireJob = z.infer<typeof WireJob>;

/** One chunk of a store file; the last chunk of a file has `last`. */
export const BlobChunk = z.object({ t: z.literal('blob'), hash: sha256, z: z.boolean(), data: chunk, last: z.boolean() });
export type BlobChunk = z.infer<typeof BlobChunk>;

export const NeedBlobs = z.object({ t: z.literal('need'), hashes: z.array(sha256).max(LIMITS.inputsPerJob) });
export const JobRefused = z.object({ t: z.literal('refused'), reason: text, message: text });
export const JobFailed = z.object({ t: z.literal('failed'), code: text, message: text });
export const RemoteResult = z.object({
  t: z.literal('result'),
  exit: z.number().int(),
  stdout: bytes,
  stderr: bytes,
  /** How long the compile itself took on the peer (the rest of the job's time is transfer). */
  compileMs: z.number().nonnegative().finite().optional(),
  outputs: z
    .array(z.object({ path: absolutePath, size: z.number().int().nonnegative().max(LIMITS.outputBytes), executable: z.boolean() }))
    .max(LIMITS.outputsPerJob),
});
export type RemoteResult = z.infer<typeof RemoteResult>;
/** One chunk of output file number `index` of the result. */
export const OutputChunk = z.object({ t: z.literal('output'), index: z.number().int().nonnegative(), z: z.boolean(), data: chunk, last: z.boolean() });
export type OutputChunk = z.infer<typeof OutputChunk>;

export const ClientToPeer = z.discriminatedUnion('t', [JobOffer, BlobChunk]);
export type ClientToPeer = z.infer<typeof ClientToPeer>;
// ---- mesh: warming a far peer (client agent → peer, one /meshcc/warm/1 stream) -----
//   client → peer   warm     the store files recent jobs used most ([hash, size])
//   peer → client   need     those it lacks;  client → peer   blob*   them
//   peer → client   warmed   done (how many it fetched)
export const WarmOffer = z.object({
  t: z.literal('warm'),
  files: z.array(z.tuple([sha256, z.number().int().nonnegative().max(MESH_JOB_LIMITS.inputFileBytes)])).max(LIMITS.inputsPerJob),
});
export const Warmed = z.object({ t: z.literal('warmed'), fetched: z.number().int().nonnegative() });
export const PeerToWarmer = z.discriminatedUnion('t', [NeedBlobs, Warmed]);

export const PeerToClient = z.discriminatedUnion('t', [NeedBlobs, JobRefused, JobFailed, RemoteResult, OutputChunk]);
export type PeerToClient = z.infer<typeof PeerToClient>;
