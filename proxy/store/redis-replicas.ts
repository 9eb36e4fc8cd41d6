/**
 * Waiting for a replica before a value leaves for a charger (`CredentialStore.replicated`).
 *
 * Redis replicates asynchronously: a primary that fails over right after acknowledging the rotation's
 * write-ahead can take the new password with it, and a charger that applies it is locked out for
 * good (nobody knows the value). So before the call goes out, a replica must hold what the primary
 * had written.
 *
 * `WAIT` would say so, but it blocks the connection it runs on, and that connection carries every
 * admission of this proxy: a stalled replica would stall them all. Instead ROLE is asked, on the
 * node that holds the charger's keys (a Cluster pipeline goes to the node of its keyed command):
 * the primary's offset then covers the write, and ROLE lists each replica's acknowledged offset,
 * which replicas report once a second. It is asked again until one replica has reached that
 * offset, or the time is up.
 *
 * ROLE is an @admin command: a user not allowed it (an ACL user, some managed services) or a server
 * that renamed it cannot tell. That gives 'unknown' (the caller warns and sends, as without
 * replicas), not a refusal: refusing would stop every rotation for good.
 */
import { StoreError } from './errors';
import type { StoreRedis } from './redis-client';

export interface ReplicaWait {
  /** How long replicas get to acknowledge (they report every second). */
  timeoutMs: number;
  /** Between two ROLE requests. */
  pollMs: number;
}

export const DEFAULT_REPLICA_WAIT: ReplicaWait = { timeoutMs: 5000, pollMs: 200 };

/** What ROLE says of a primary: its offset and the offsets its replicas acknowledged. */
interface PrimaryRole {
  offset: number;
  replicaOffsets: number[];
}

/** What `awaitReplica` found. */
export type ReplicaCheck = 'replicated' | 'no_replicas' | 'unknown';

/**
 * Resolves 'replicated' once a replica of the node holding `key` has acknowledged everything that
 * node had written when first asked, 'no_replicas' when it has none connected, 'unknown' when the
 * node will not say (ROLE refused or renamed).
 * @throws StoreError `store_not_replicated` when none did within the time, or the node is no primary.
 */
export async function awaitReplica(client: StoreRedis, key: string, wait: ReplicaWait = DEFAULT_REPLICA_WAIT): Promise<ReplicaCheck> {
  let first: PrimaryRole;
  try {
    first = await roleOf(client, key);
  } catch (err) {
    if (roleRefused(err)) return 'unknown';
    throw err;
  }
  if (first.replicaOffsets.length === 0) return 'no_replicas';
  const deadline = Date.now() + wait.timeoutMs;
  let role = first;
  while (!role.replicaOffsets.some((o) => o >= first.offset)) {
    if (Date.now() >= deadline) {
      throw new StoreError('store_not_replicated', `no Redis replica acknowledged the write within ${wait.timeoutMs} ms (${first.replicaOffsets.length} connected)`);
    }
    await new Promise((r) => setTimeout(r, wait.pollMs));
    role = await roleOf(client, key);
  }
  return 'replicated';
}

async function roleOf(client: StoreRedis, key: string): Promise<PrimaryRole> {
  // EXISTS only routes the pipeline (Cluster) to the node of `key`; standalone, it changes nothing.
  const replies = await client.pipeline().exists(key).role().exec();
  // A MOVED or ASK on EXISTS is not followed (ioredis redirects only read-only pipelines): the
  // ROLE beside it came from a node that no longer holds the key.
  const routed = replies?.[0]?.[0];
  if (routed) throw routed;
  const [err, reply] = replies?.[1] ?? [new Error('no reply to ROLE'), null];
  if (err) throw err;
  return parseRole(reply);
}

/** ROLE not allowed to this user (NOPERM) or renamed away (unknown command). */
function roleRefused(err: unknown): boolean {
  return err instanceof Error && /^(NOPERM|ERR unknown command)/.test(err.message);
}

/** Parses ROLE's reply: `['master', offset, [[ip, port, offset], ...]]`. */
export function parseRole(reply: unknown): PrimaryRole {
  if (!Array.isArray(reply) || reply[0] !== 'master') {
    throw new StoreError('store_not_replicated', `the Redis node holding the charger is not a primary (ROLE ${Array.isArray(reply) ? String(reply[0]) : 'unreadable'})`);
  }
  const offset = Number(reply[1]);
  const replicas = Array.isArray(reply[2]) ? (reply[2] as unknown[]) : [];
  const replicaOffsets = replicas.map((r) => (Array.isArray(r) ? Number(r[2]) : NaN));
  if (!Number.isFinite(offset) || replicaOffsets.some((o) => !Number.isFinite(o))) {
    throw new StoreError('store_not_replicated', 'unreadable ROLE reply from Redis');
  }
  return { offset, replicaOffsets };
}
