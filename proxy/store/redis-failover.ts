/**
 * Moves a Redis client off a demoted primary.
 *
 * Behind an address that follows the primary (a managed Redis's primary endpoint, a Kubernetes
 * Service, a DNS name), a failover leaves established connections on the old primary, which is now
 * a replica: every write fails with READONLY until the process restarts, and with it every claim,
 * rotation step and lockout count. ioredis reconnects only when the connection drops.
 *
 * So on a READONLY reply a fresh connection to the same target asks the node's role. When it
 * reaches a primary, the address has moved on and the client reconnects to follow it. When it finds
 * a replica too (no primary yet), the client stays where it is: its reads still work, and a
 * reconnect would only fail the commands sent meanwhile. One probe at a time, at most one per
 * PROBE_INTERVAL_MS.
 */
import type Redis from 'ioredis';

/** What the watcher needs of the client: a reconnect. */
export interface Reconnectable {
  disconnect(reconnect?: boolean): void;
}

/** Options of {@link primaryFollower}. */
export interface PrimaryFollowerOptions {
  /** The client to move (may be set after the follower is made: ioredis takes the hook in its options). */
  client: () => Reconnectable | null;
  /** A new, not yet connected client for the same target (lazyConnect), used once to ask the role. */
  openProbe: () => Redis;
  /** Told when the client is moved (for a log line). */
  onMoved?: () => void;
}

/** Least time between two probes. */
const PROBE_INTERVAL_MS = 5000;

/**
 * The node's role, asked with HELLO (allowed to every user, Redis 6+), which managed services and
 * ACL-restricted users keep when they deny ROLE (@admin); ROLE where HELLO is unknown (Redis 5).
 */
async function roleOf(p: Redis): Promise<string> {
  try {
    const hello = (await p.call('HELLO', '2')) as unknown[];
    const at = hello.indexOf('role');
    if (at >= 0) return String(hello[at + 1]);
  } catch {
    /* no HELLO: an older server */
  }
  return String(((await p.role()) as unknown[])[0]);
}

/** Returns the `reconnectOnError` hook: it never asks ioredis to reconnect itself (always false). */
export function primaryFollower(o: PrimaryFollowerOptions): (err: Error) => false {
  let probing = false;
  let lastProbe = -Infinity;
  const probe = async () => {
    const p = o.openProbe();
    p.on('error', () => undefined); // its failure is an answer too: stay
    try {
      await p.connect();
      const client = o.client();
      if ((await roleOf(p)) === 'master' && client) {
        client.disconnect(true);
        o.onMoved?.();
      }
    } catch {
      // No primary reachable: stay on the connection whose reads still work.
    } finally {
      p.disconnect();
      probing = false;
    }
  };
  return (err: Error) => {
    // A plain write answers `READONLY ...`; one inside a script, on Redis before 7, `ERR ... READONLY ...`.
    if (!err.message.includes('READONLY') || probing || Date.now() - lastProbe < PROBE_INTERVAL_MS) return false;
    probing = true;
    lastProbe = Date.now();
    void probe();
    return false;
  };
}
