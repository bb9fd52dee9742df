import type { KvKey, KvStore } from '../contracts/kv-store.js';
import { IngestError } from '../errors/ingest-error.js';
import { leaseSchema, validState } from './state-schema.js';

/** The JSON stored at `<checkpoint key>::lease`. @public */
export interface LeaseValue {
  [k: string]: string | number;
  state: 'held' | 'released';
  owner: string;
  runId: string;
  acquiredAt: string;
  /** When the lease lapses unless renewed (ISO-8601). */
  expiresAt: string;
}

/**
 * A lease on one unit in the KvStore. The entry's version is the fencing token: every renewal is a
 * compare-and-set on it, so a holder that was paused past its TTL finds its token stale and is refused.
 * A released lease is kept as `state: 'released'` (not deleted), so versions never repeat.
 * @internal
 */
export class Lease {
  #token: number;
  /** The token at acquisition: the fencing token staging sessions are claimed with. */
  readonly epoch: number;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #released = false;

  private constructor(
    private readonly kv: KvStore,
    readonly key: KvKey,
    private readonly value: LeaseValue,
    token: number,
    private readonly ttlMs: number,
  ) {
    this.#token = token;
    this.epoch = token;
  }

  /** Current fencing token (the lease entry's version). */
  get token(): number {
    return this.#token;
  }

  /**
   * Take the lease, or fail with `lease_held` when another live holder has it.
   * @throws IngestError `lease_held`
   */
  static async acquire(kv: KvStore, key: KvKey, who: { owner: string; runId: string; ttlMs: number }): Promise<Lease> {
    const current = await kv.get<LeaseValue>(key);
    if (current) validState<LeaseValue>(leaseSchema, current.value, 'lease', key.key);
    if (current && current.value.state === 'held' && Date.parse(current.value.expiresAt) > Date.now()) {
      throw leaseHeld(key, current.value);
    }
    const now = Date.now();
    const value: LeaseValue = {
      state: 'held',
      owner: who.owner,
      runId: who.runId,
      acquiredAt: new Date(now).toISOString(),
      expiresAt: new Date(now + who.ttlMs).toISOString(),
    };
    try {
      const entry = await kv.put<LeaseValue>(key, value, {
        expectedVersion: current ? current.version : null,
        ttlMs: who.ttlMs,
      });
      return new Lease(kv, key, value, entry.version, who.ttlMs);
    } catch (err) {
      if (IngestError.is(err, 'kv_conflict')) {
        const winner = await kv.get<LeaseValue>(key).catch(() => undefined);
        throw leaseHeld(key, winner?.value);
      }
      throw err;
    }
  }

  /** The run the lease is held for. */
  get runId(): string {
    return this.value.runId;
  }

  /** Record the run id once it is known (a resumed run adopts the earlier id). */
  async setRunId(runId: string): Promise<void> {
    if (this.value.runId === runId) return;
    this.value.runId = runId;
    await this.renew();
  }

  /**
   * Extend the lease; the compare-and-set on the token is the fencing check.
   * @throws IngestError `lease_lost` when the token is stale
   */
  renew(): Promise<void> {
    const op = this.#chain.then(async () => {
      if (this.#released) throw new IngestError('lease_lost', `Lease ${this.key.key} was already released`);
      const expiresAt = new Date(Date.now() + this.ttlMs).toISOString();
      try {
        const entry = await this.kv.put<LeaseValue>(
          this.key,
          { ...this.value, expiresAt },
          { expectedVersion: this.#token, ttlMs: this.ttlMs },
        );
        this.#token = entry.version;
      } catch (err) {
        if (IngestError.is(err, 'kv_conflict')) {
          throw new IngestError(
            'lease_lost',
            `Lease on ${this.key.key} was lost (token ${this.#token} is stale); this run is fenced off`,
            { cause: err, retryable: true, details: { token: this.#token } },
          );
        }
        throw err;
      }
    });
    this.#chain = op.catch(() => {});
    return op;
  }

  /** Renew every third of the TTL; `onLost` hears about a lost lease (or a KvStore that stays down). */
  startRenewal(onLost: (err: unknown) => void): void {
    const every = Math.max(50, Math.floor(this.ttlMs / 3));
    let failures = 0;
    this.#timer = setInterval(() => {
      this.renew().then(
        () => {
          failures = 0;
        },
        (err) => {
          failures++;
          if (IngestError.is(err, 'lease_lost') || failures >= 2) onLost(err);
        },
      );
    }, every);
    this.#timer.unref?.();
  }

  /** Stop renewing and mark the lease released. Never throws. */
  async release(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const op = this.#chain.then(async () => {
      if (this.#released) return;
      this.#released = true;
      await this.kv.put<LeaseValue>(
        this.key,
        { ...this.value, state: 'released', expiresAt: new Date().toISOString() },
        { expectedVersion: this.#token },
      );
    });
    this.#chain = op.catch(() => {});
    await op.catch(() => {});
  }

  /** Stop renewing without touching the entry (it expires on its own). */
  abandon(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#released = true;
  }
}

function leaseHeld(key: KvKey, holder: LeaseValue | undefined): IngestError {
  const who = holder ? ` by ${holder.owner} (run ${holder.runId}) until ${holder.expiresAt}` : '';
  return new IngestError('lease_held', `Unit is already being run${who}; key ${key.key}`, {
    details: { key: key.key, holder: holder ?? null },
  });
}
