/**
 * The embedded store's state: chargers, factory defaults and revoked serials in memory, their file
 * form (`store.json`), and the list of changes between two versions of it (used to turn another
 * process's write into change-feed events).
 */
import { StoreError } from './errors';
import type { ChargerRecord, FactoryDefault, RevokedSerial, StoreChange } from './types';

const FORMAT = 'ocpp-security-proxy/store';

interface FileShape {
  format: string;
  version: 1;
  chargers: ChargerRecord[];
  factoryDefaults: FactoryDefault[];
  revoked: RevokedSerial[];
}

/** In-memory state of one embedded store file. Mutate chargers only through `setCharger` / `deleteCharger`. */
export class StoreState {
  readonly chargers = new Map<string, ChargerRecord>();
  readonly factory = new Map<string, FactoryDefault>();
  readonly revoked = new Map<string, RevokedSerial>();
  #sortedIds: string[] | null = null;

  /**
   * Parse the contents of a store file.
   * @throws StoreError `store_corrupt` naming `file` when it is not a store file.
   */
  static parse(text: string, file: string): StoreState {
    let data: FileShape;
    try {
      data = JSON.parse(text) as FileShape;
      if (!data || data.format !== FORMAT || data.version !== 1 || !Array.isArray(data.chargers)) throw new Error('shape');
    } catch {
      throw new StoreError('store_corrupt', `store file ${file} is corrupt or not a store file; it was left untouched`);
    }
    const state = new StoreState();
    for (const rec of data.chargers) state.chargers.set(rec.identity, rec);
    for (const fd of data.factoryDefaults ?? []) state.factory.set(fd.id, fd);
    for (const r of data.revoked ?? []) state.revoked.set(r.serialHex, r);
    return state;
  }

  setCharger(rec: ChargerRecord): void {
    if (!this.chargers.has(rec.identity)) this.#sortedIds = null;
    this.chargers.set(rec.identity, rec);
  }

  /** Returns false when there was no such charger. */
  deleteCharger(identity: string): boolean {
    const had = this.chargers.delete(identity);
    if (had) this.#sortedIds = null;
    return had;
  }

  /** Charger identities in byte order (cached until the set of identities changes). */
  sortedIds(): string[] {
    if (!this.#sortedIds) {
      this.#sortedIds = [...this.chargers.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    }
    return this.#sortedIds;
  }

  /** The file form, one JSON document plus a newline. */
  serialise(): string {
    const data: FileShape = {
      format: FORMAT,
      version: 1,
      chargers: this.sortedIds().map((id) => this.chargers.get(id)!),
      factoryDefaults: [...this.factory.values()],
      revoked: [...this.revoked.values()],
    };
    return JSON.stringify(data) + '\n';
  }

  /**
   * The changes that turn this state into `next`: a `charger` change per identity whose record differs
   * (ignoring the session claim and `lastSeenAt`), a `session` change per identity claimed anew, a `revoked` change
   * per serial revoked or un-revoked, one `factory` change when the factory defaults differ.
   */
  diff(next: StoreState): StoreChange[] {
    const out: StoreChange[] = [];
    for (const id of new Set([...this.chargers.keys(), ...next.chargers.keys()])) {
      const [was, now] = [this.chargers.get(id), next.chargers.get(id)];
      if (feedForm(was) !== feedForm(now)) out.push({ kind: 'charger', identity: id });
      if (now?.session && now.session.nonce !== was?.session?.nonce) out.push({ kind: 'session', identity: id, owner: now.session });
    }
    for (const serialHex of new Set([...this.revoked.keys(), ...next.revoked.keys()])) {
      if (this.revoked.has(serialHex) !== next.revoked.has(serialHex)) out.push({ kind: 'revoked', serialHex });
    }
    if (factoryForm(this) !== factoryForm(next)) out.push({ kind: 'factory' });
    return out;
  }
}

function feedForm(rec: ChargerRecord | undefined): string {
  return rec ? JSON.stringify({ ...rec, session: undefined, lastSeenAt: undefined }) : '';
}

function factoryForm(state: StoreState): string {
  return JSON.stringify([...state.factory.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
}
