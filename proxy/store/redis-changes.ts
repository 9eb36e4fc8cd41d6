/**
 * The RedisStore's change feed over Redis pub/sub, so an operator action taken on one replica (or by
 * the CLI) reaches the replica holding the charger's session.
 *
 * Writers PUBLISH `{src, ...change}` on `<prefix>changes` through their normal connection and report
 * the change to their own listeners directly (messages carrying their own `src` are skipped, so each
 * listener hears a change once; `src` comes first so that a replica's own messages, one per session it
 * admits, are skipped by their first bytes, unparsed). Receiving needs a connection in subscriber mode: a duplicate of the
 * store's client, created on the first subscription, with an offline queue so it can subscribe before
 * it is connected. ioredis reconnects it by itself (standalone, Sentinel: re-resolving the master;
 * Cluster: another node, since classic pub/sub is broadcast cluster-wide) and the channel is
 * subscribed again on every `ready`. Messages published while the subscriber is disconnected are
 * lost, so once it is subscribed again the listeners hear a `resync` (re-read what you hold). A failed
 * PUBLISH is ignored (the write itself already succeeded): best effort.
 *
 * Some losses make no sound: a subscriber connection cut without a FIN or RST (a node gone, a
 * black-holed route) stays "connected" for good, as nothing is ever written on it; and ioredis moves
 * a Cluster subscription to another node without a word. So each process publishes a probe of its
 * own every `probeMs` (other processes skip it by its first bytes) and expects to hear it: one not
 * heard within PROBE_PATIENCE intervals means the subscription is dead or lost messages, and the
 * subscriber is replaced; once it is subscribed, the listeners hear a `resync`.
 */
import { randomUUID } from 'node:crypto';
import Redis, { Cluster } from 'ioredis';
import { ChangeListeners, parseChange } from './change-feed';
import type { StoreRedis } from './redis-client';
import type { StoreChange, StoreChangeListener } from './types';

/** How often a process checks that its subscription still hears the channel. */
export const DEFAULT_PROBE_MS = 5000;
/** A probe not heard for this many intervals: the subscription is taken for dead. */
const PROBE_PATIENCE = 3;
/** How every probe begins, whichever process sent it. */
const PROBE_START = '{"probe":';

/** Publishes and receives store changes on one channel. */
export class RedisChangeFeed {
  /** The pub/sub channel. */
  readonly channel: string;
  readonly #client: StoreRedis;
  readonly #source = randomUUID();
  /** How {@link messageFor} begins every message of this process. */
  readonly #ownPrefix = `{"src":${JSON.stringify(this.#source)},`;
  readonly #listeners = new ChangeListeners();
  #sub: Redis | Cluster | null = null;
  #closed = false;
  readonly #probeMs: number;
  readonly #probePrefix = `${PROBE_START}${JSON.stringify(this.#source)},`;
  #probeTimer: NodeJS.Timeout | null = null;
  #probeSeq = 0;
  #heardSeq = 0;
  /** The probe published and not heard yet: its number and when (performance.now()). */
  #awaiting: { seq: number; at: number } | null = null;
  /** The current subscriber's SUBSCRIBE went through and its connection has not closed since. */
  #subscribed = false;

  /** @param probeMs how often the subscription is checked (see above); 0 = never. */
  constructor(client: StoreRedis, channel: string, probeMs = DEFAULT_PROBE_MS) {
    this.#client = client;
    this.channel = channel;
    this.#probeMs = probeMs;
  }

  /** Add a listener; starts the subscriber connection on first use. Returns an idempotent unsubscribe. */
  subscribe(listener: StoreChangeListener): () => void {
    const off = this.#listeners.add(listener);
    if (!this.#sub && !this.#closed) {
      this.#sub = this.#startSubscriber(false);
      if (this.#probeMs > 0) {
        this.#probeTimer = setInterval(() => void this.#probe(), this.#probeMs);
        this.#probeTimer.unref();
      }
    }
    return off;
  }

  /** Report `change` to local listeners and publish it to other processes; never rejects. */
  async publish(change: StoreChange): Promise<void> {
    this.reportLocally(change);
    try {
      await this.#client.publish(this.channel, this.messageFor(change));
    } catch {
      /* best effort: the change is stored; a replica missing it re-reads on the next connection */
    }
  }

  /** The message {@link publish} sends for `change`, for a write whose own script publishes it (one round trip). */
  messageFor(change: StoreChange): string {
    return JSON.stringify({ src: this.#source, ...change });
  }

  /** Report a change that a script has already published to this process's listeners. */
  reportLocally(change: StoreChange): void {
    this.#listeners.emit(change);
  }

  /** Close the subscriber connection. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    const sub = this.#sub;
    this.#sub = null;
    if (!sub) return;
    try {
      await sub.quit();
    } catch {
      sub.disconnect();
    }
  }

  /**
   * Checks the subscription: publishes a probe when none is awaited, and replaces the subscriber when
   * the one awaited has not come back in PROBE_PATIENCE intervals.
   */
  async #probe(): Promise<void> {
    if (this.#closed || !this.#sub) return;
    if (this.#awaiting) {
      if (performance.now() - this.#awaiting.at < this.#probeMs * PROBE_PATIENCE) return;
      this.#awaiting = null;
      this.#subscribed = false;
      const dead = this.#sub;
      this.#sub = this.#startSubscriber(true);
      dead.disconnect();
      return;
    }
    // Between connections ioredis reconnects by itself, and a resync follows: nothing to check.
    if (!this.#subscribed) return;
    const seq = ++this.#probeSeq;
    try {
      await this.#client.publish(this.channel, `${this.#probePrefix}"seq":${seq}}`);
    } catch {
      return; // the command connection is down: that says nothing about the subscription
    }
    if (seq > this.#heardSeq && !this.#closed) this.#awaiting = { seq, at: performance.now() }; // unless it beat the reply
  }

  /** @param lost whether changes may have been missed already: its first subscription then reports a resync. */
  #startSubscriber(lost: boolean): Redis | Cluster {
    const override = { enableOfflineQueue: true, lazyConnect: false };
    const sub = this.#client instanceof Cluster ? this.#client.duplicate([], override) : (this.#client as Redis).duplicate(override);
    sub.on('error', () => undefined); // reconnects by itself; errors are not the listeners' business
    // Subscribed again after the connection was lost: what was published meanwhile never arrives.
    sub.on('close', () => {
      lost = true;
      if (this.#sub === sub) this.#subscribed = false;
    });
    const subscribe = () => void sub.subscribe(this.channel).then(() => {
      if (this.#sub !== sub || this.#closed) return;
      this.#subscribed = true;
      if (!lost) return;
      lost = false;
      this.#listeners.emit({ kind: 'resync' });
    }, () => undefined);
    sub.on('ready', subscribe);
    subscribe();
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel || message.startsWith(this.#ownPrefix)) return;
      if (message.startsWith(PROBE_START)) {
        if (message.startsWith(this.#probePrefix)) this.#heard(Number(message.slice(this.#probePrefix.length + '"seq":'.length, -1)));
        return; // another process's probe
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(message);
      } catch {
        return;
      }
      const change = parseChange(parsed);
      if (change) this.#listeners.emit(change);
    });
    return sub;
  }

  #heard(seq: number): void {
    if (!Number.isSafeInteger(seq)) return;
    this.#heardSeq = Math.max(this.#heardSeq, seq);
    if (this.#awaiting && seq >= this.#awaiting.seq) this.#awaiting = null;
  }
}
