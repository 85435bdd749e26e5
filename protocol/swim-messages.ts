// Membership and load, split by who needs them (docs/mesh.md).
//
//   /meshcc/swim/1    what every agent must know: who is alive, its card (addresses, who may
//                     become scheduler, toolchains held), and the scheduler's claim. One request
//                     and one answer per stream, SWIM-style:
//     ping      → ack              a probe; both carry piggybacked updates and the claim
//     ping-req  → ack | nack       "probe this member for me" (indirect probe, before suspecting)
//     sync      → sync             the whole table both ways: joining
//     sync+digest → sync           anti-entropy (membership/digest-sync.ts): a hash of the table;
//                                  the same hash back when the tables agree, else the other's
//                                  entries; then a sync with the rows it lacks and `want`, the
//                                  peers whose rows to send back
//
//   /meshcc/report/1  what only the scheduler needs: one long-lived stream from every member
//                     to the scheduler it follows.
//     member → scheduler   hello   the term it follows, and the scheduler it lost, if any
//                          load    slots, slots in use, load, memory, activity: on change
//                          loads?  the whole mesh's loads (status, top, the monitor)
//     scheduler → member   lease   "still here", as often as the lease asks
//                          redirect  "not me: follow this one" (or nobody known yet)
//                          news    members that joined or died, passed on at once (a newcomer
//                                  is listed by all in a round trip, not after gossip rounds)
//                          loads   every member's last report
import { z } from 'zod';

export const SWIM_PROTOCOL = '/meshcc/swim/2';
export const REPORT_PROTOCOL = '/meshcc/report/1';

export const SWIM_LIMITS = {
  /** Largest frame: a sync of a few thousand members with their toolchains. */
  frameBytes: 16 * 1024 * 1024,
  members: 8192,
  updates: 64,
  addresses: 32,
  addressBytes: 512,
  toolchains: 256,
  textBytes: 256,
} as const;

const peerId = z.string().min(1).max(128);
const text = z.string().max(SWIM_LIMITS.textBytes);
const count = z.number().int().nonnegative().max(1_000_000);
const time = z.number().int().nonnegative();

/** What rarely changes about a member and everyone needs: a new card comes with a new incarnation. */
export const MemberCard = z.object({
  peerId,
  name: text.min(1),
  addresses: z.array(z.string().min(1).max(SWIM_LIMITS.addressBytes)).max(SWIM_LIMITS.addresses),
  /** Its clock when it started: the longest-running agent ranks first for scheduler. */
  startedAt: time,
  protocolVersion: z.number().int().nonnegative(),
  /** Whether it may become the scheduler (agents do; a member that only serves jobs need not). */
  candidate: z.boolean().optional(),
  cores: count,
  /** Jobs it accepts from peers at once (0 when it cannot execute); what is in use goes to the scheduler only. */
  slots: count,
  speed: z.number().nonnegative().finite(),
  os: text,
  arch: text,
  libc: text,
  toolchains: z.array(text).max(SWIM_LIMITS.toolchains),
  executorUnavailable: z.string().max(1024).optional(),
  reachable: z.boolean().optional(),
  relay: z.boolean().optional(),
  /** The address (`/ip4/…/tcp/…`) at which its router forwards to it by a port mapping it asked for. */
  mapped: z.string().max(SWIM_LIMITS.addressBytes).optional(),
});
export type MemberCard = z.infer<typeof MemberCard>;

export const MemberUpdate = z.object({
  peerId,
  state: z.enum(['alive', 'suspect', 'dead']),
  incarnation: z.number().int().nonnegative(),
  /** With `alive` (and in syncs): the card of that incarnation. */
  card: MemberCard.optional(),
});
export type MemberUpdate = z.infer<typeof MemberUpdate>;

/** The scheduler a sender follows: the highest term wins, then the better-ranked claimant. */
export const Leader = z.object({ term: z.number().int().nonnegative(), peerId: z.string().max(128) });
export type Leader = z.infer<typeof Leader>;

const updates = z.array(MemberUpdate).max(SWIM_LIMITS.updates);
const digest = z.string().max(64);
/** (peer, incarnation, state: 0 alive, 1 suspect, 2 dead) */
const entries = z.array(z.tuple([peerId, z.number().int().nonnegative(), z.union([z.literal(0), z.literal(1), z.literal(2)])])).max(SWIM_LIMITS.members);

export const SwimRequest = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ping'), leader: Leader, updates }),
  z.object({ t: z.literal('ping-req'), target: peerId, addresses: z.array(z.string().max(SWIM_LIMITS.addressBytes)).max(SWIM_LIMITS.addresses), leader: Leader, updates }),
  z.object({ t: z.literal('sync'), leader: Leader, members: z.array(MemberUpdate).max(SWIM_LIMITS.members), digest: digest.optional(), want: z.array(peerId).max(SWIM_LIMITS.members).optional() }),
]);
export type SwimRequest = z.infer<typeof SwimRequest>;

export const SwimAnswer = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ack'), leader: Leader, updates }),
  z.object({ t: z.literal('nack'), leader: Leader, updates }),
  z.object({ t: z.literal('sync'), leader: Leader, members: z.array(MemberUpdate).max(SWIM_LIMITS.members), digest: digest.optional(), entries: entries.optional() }),
]);
export type SwimAnswer = z.infer<typeof SwimAnswer>;

// ---- the report stream --------------------------------------------------------------

export const Activity = z.object({
  jobs: z.number().int().nonnegative(),
  remote: z.number().int().nonnegative(),
  served: z.number().int().nonnegative(),
  bytesSent: z.number().int().nonnegative(),
  bytesReceived: z.number().int().nonnegative(),
});
export type Activity = z.infer<typeof Activity>;

/** What only the scheduler needs, sent when it changed. */
export const LoadReport = z.object({
  slots: count,
  slotsUsed: count,
  /** 1-minute load average. */
  load: z.number().nonnegative().finite(),
  freeMemoryBytes: z.number().int().nonnegative(),
  activity: Activity.optional(),
});
export type LoadReport = z.infer<typeof LoadReport>;

export const LoadRow = LoadReport.extend({ peerId, at: time });
export type LoadRow = z.infer<typeof LoadRow>;

export const ReportFromMember = z.discriminatedUnion('t', [
  z.object({ t: z.literal('hello'), term: z.number().int().nonnegative(), lost: Leader.optional() }),
  LoadReport.extend({ t: z.literal('load') }),
  z.object({ t: z.literal('loads?'), id: count }),
]);
export type ReportFromMember = z.infer<typeof ReportFromMember>;

export const ReportFromScheduler = z.discriminatedUnion('t', [
  z.object({ t: z.literal('lease'), term: z.number().int().nonnegative(), everyMs: z.number().int().positive().max(60_000) }),
  z.object({ t: z.literal('redirect'), leader: Leader }),
  z.object({ t: z.literal('loads'), id: count, rows: z.array(LoadRow).max(SWIM_LIMITS.members) }),
  z.object({ t: z.literal('news'), updates: z.array(MemberUpdate).max(SWIM_LIMITS.members) }),
]);
export type ReportFromScheduler = z.infer<typeof ReportFromScheduler>;
