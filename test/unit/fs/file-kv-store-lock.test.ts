/** FileKvStore's lock: breaking a stale lock is compare-and-set (no fresh lock is deleted); every call has a timeout. */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FileKvStore } from '../../../src/fs/index.js';

/** Every fs call waits a random 0–15 ms while `jitter` is on, and data-file reads hang while `hang` is on. */
const fault = vi.hoisted(() => ({ jitter: false, hang: '' }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (fault.hang && a[0] === fault.hang) await new Promise(() => {});
      if (fault.jitter) await new Promise((r) => setTimeout(r, Math.random() * 15));
      return f(...a);
    };
  return {
    ...fs,
    default: fs,
    readFile: wrap(fs.readFile),
    readdir: wrap(fs.readdir),
    stat: wrap(fs.stat),
    unlink: wrap(fs.unlink),
    writeFile: wrap(fs.writeFile),
    rename: wrap(fs.rename),
    utimes: wrap(fs.utimes),
  };
});

const dir = mkdtempSync(join(tmpdir(), 'nucleus-filekv-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const key = { namespace: 'n', scopeId: 's', key: 'k' };

/** A lock left a minute ago by a crashed process, in the layouts of this and the previous version. */
function plantStaleLock(path: string): void {
  const old = new Date(Date.now() - 60_000);
  writeFileSync(`${path}.lock`, '999999:crashed');
  utimesSync(`${path}.lock`, old, old);
  mkdirSync(`${path}.locks`, { recursive: true });
  writeFileSync(join(`${path}.locks`, '1'), '999999');
  utimesSync(join(`${path}.locks`, '1'), old, old);
}

describe('FileKvStore lock', () => {
  it('several waiters breaking one stale lock at once never delete a fresh lock: exactly one create wins', async () => {
    fault.jitter = true;
    try {
      for (let round = 0; round < 5; round++) {
        const path = join(dir, `breakers-${round}.json`);
        plantStaleLock(path);
        const stores = Array.from({ length: 6 }, () => new FileKvStore({ path }));
        const results = await Promise.allSettled(stores.map((kv, i) => kv.put(key, i, { expectedVersion: null })));
        const won = results.filter((r) => r.status === 'fulfilled');
        const codes = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []));
        expect({ round, won: won.length, codes }).toEqual({ round, won: 1, codes: Array(5).fill('kv_conflict') });
        expect((await new FileKvStore({ path }).get(key))?.version).toBe(1);
      }
    } finally {
      fault.jitter = false;
    }
  });

  it('fails get and list with `timeout` when the file does not answer within timeoutMs', async () => {
    const path = join(dir, 'hung.json');
    const kv = new FileKvStore({ path, timeoutMs: 150 });
    await kv.put(key, 1);
    fault.hang = path;
    try {
      await expect(kv.get(key)).rejects.toMatchObject({ code: 'timeout', retryable: true });
      const listing = (async () => {
        for await (const _ of kv.list({ namespace: 'n', scopeId: 's' }));
      })();
      await expect(listing).rejects.toMatchObject({ code: 'timeout', message: expect.stringContaining('150 ms') });
    } finally {
      fault.hang = '';
    }
  });

  it('fails put with `timeout` while another process holds a fresh lock longer than timeoutMs', async () => {
    const path = join(dir, 'held.json');
    mkdirSync(`${path}.locks`, { recursive: true });
    writeFileSync(join(`${path}.locks`, '1'), '999999');
    writeFileSync(`${path}.lock`, '999999:alive');
    const kv = new FileKvStore({ path, timeoutMs: 200, lockTimeoutMs: 60_000 });
    const started = Date.now();
    await expect(kv.put(key, 1)).rejects.toMatchObject({ code: 'timeout', retryable: true });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
