// /meshcc/schedule/1: one long-lived stream from each client agent to the elected scheduler.
//
//   client → scheduler   place    a job to place: its toolchain, estimated size, the client's
//                                 free local slots and speed, the peers already tried
//   scheduler → client   placed   where it goes (a peer, "local", or "none": place it yourself),
//                                 and why; answered when a slot is free, largest jobs first
//                        not-scheduler   this agent is not (or no longer) the scheduler
//   client → scheduler   done     the placed job ended (its time teaches the peer's speed), or
//                                 the peer refused it because it fetches the toolchain first
import { z } from 'zod';
import { sha256 } from './messages.js';

export const SCHEDULE_PROTOCOL = '/meshcc/schedule/1';

export const SCHEDULE_LIMITS = {
  frameBytes: 64 * 1024,
  skipped: 64,
  textBytes: 256,
} as const;

const peerId = z.string().min(1).max(128);
const text = z.string().max(SCHEDULE_LIMITS.textBytes);
const ms = z.number().nonnegative().finite().max(86_400_000);

export const PlaceRequest = z.object({
  t: z.literal('place'),
  v: z.number().int(),
  /** chosen by the client, echoed in the answer and in `done` */
  id: z.number().int().nonnegative(),
  toolchain: z.object({ id: sha256, arch: text, os: text }),
  estimateMs: ms,
  localFree: z.number().int().nonnegative().max(100_000),
  localSpeed: z.number().nonnegative().finite(),
  skip: z.array(peerId).max(SCHEDULE_LIMITS.skipped),
  /** what a job costs on top of its compile on each far peer, as this client measured (ms) */
  linkMs: z.record(peerId, ms).refine((r) => Object.keys(r).length <= SCHEDULE_LIMITS.skipped, 'too many links').optional(),
});
export type PlaceRequest = z.infer<typeof PlaceRequest>;

export const PlaceDone = z.object({
  t: z.literal('done'),
  id: z.number().int().nonnegative(),
  /** how long the job took on the peer, as the client saw it; absent if it did not run */
  ms: ms.optional(),
  /** the peer refused it: it is fetching the toolchain */
  fetching: z.boolean().optional(),
});

export const ClientToScheduler = z.discriminatedUnion('t', [PlaceRequest, PlaceDone]);
export type ClientToScheduler = z.infer<typeof ClientToScheduler>;

export const Placed = z.object({
  t: z.literal('placed'),
  id: z.number().int().nonnegative(),
  where: z.enum(['peer', 'local', 'none']),
  peer: peerId.optional(),
  reason: text,
  expectedMs: ms.optional(),
});
export const NotScheduler = z.object({ t: z.literal('not-scheduler'), scheduler: z.string().max(128), term: z.number().int().nonnegative() });

export const SchedulerToClient = z.discriminatedUnion('t', [Placed, NotScheduler]);
export type SchedulerToClient = z.infer<typeof SchedulerToClient>;
