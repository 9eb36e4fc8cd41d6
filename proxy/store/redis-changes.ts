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
 */
import { randomUUID } from 'node:crypto';
import Redis, { Cluster } from 'ioredis';
import { ChangeListeners, parseChange } from './change-feed';
import type { StoreRedis } from './redis-client';
import type { StoreChange, StoreChangeListener } from './types';

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

  constructor(client: StoreRedis, channel: string) {
    this.#client = client;
    this.channel = channel;
  }

  /** Add a listener; starts the subscriber connection on first use. Returns an idempotent unsubscribe. */
  subscribe(listener: StoreChangeListener): () => void {
    const off = this.#listeners.add(listener);
    if (!this.#sub && !this.#closed) this.#sub = this.#startSubscriber();
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
    const sub = this.#sub;
    this.#sub = null;
    if (!sub) return;
    try {
      await sub.quit();
    } catch {
      sub.disconnect();
    }
  }

  #startSubscriber(): Redis | Cluster {
    const override = { enableOfflineQueue: true, lazyConnect: false };
    const sub = this.#client instanceof Cluster ? this.#client.duplicate([], override) : (this.#client as Redis).duplicate(override);
    sub.on('error', () => undefined); // reconnects by itself; errors are not the listeners' business
    // Subscribed again after the connection was lost: what was published meanwhile never arrives.
    let lost = false;
    sub.on('close', () => { lost = true; });
    const subscribe = () => void sub.subscribe(this.channel).then(() => {
      if (!lost || this.#closed) return;
      lost = false;
      this.#listeners.emit({ kind: 'resync' });
    }, () => undefined);
    sub.on('ready', subscribe);
    subscribe();
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel || message.startsWith(this.#ownPrefix)) return;
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
}
