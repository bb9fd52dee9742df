/**
 * Crash harness with the pg-copy pass-through (PostgreSQL COPY text staged unchanged, fed to COPY unchanged): every
 * named crash point and a kill of the resuming process, filesystem staging, `append` (a target without a primary key,
 * so a duplicate would show). The invariants hold after each kill and after the recovery, exactly as on the row path.
 */
import { describe, expect, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { type CrashSetup, namedCrashRound, resumeCrashRound, useCrashSetup } from './crash-suite.js';
import { POINTS } from './workers/crash-worker-points.js';

const pg = usePostgres('rel_cp_pass');
const base = useCrashSetup('crash-points-pass-through', pg, 'append', 'fs');
/** The same setup, with the worker staging through `pgCopyCodec()`. */
const s: CrashSetup = new Proxy(base, {
  get: (t, p) => (p === 'env' ? () => ({ ...t.env(), CODEC: 'pg-copy' }) : Reflect.get(t, p)),
});

describe('crash at every named point — pg-copy pass-through, filesystem staging, append', () => {
  for (const point of POINTS.filter((p) => p !== 'resume')) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(s, point), 120_000);
  }
  it(
    'a SIGKILL of the process that resumes a crashed run loses and duplicates nothing',
    () => resumeCrashRound(s),
    180_000,
  );
  it('the rounds staged pg-copy slices only (the pass-through really ran)', async () => {
    const keys: string[] = [];
    for await (const info of s.store().list(`${s.prefix}/`)) keys.push(info.key);
    const slices = keys.filter((k) => /\/\d{6}\.[a-z.]+$/.test(k));
    expect(slices.length).toBeGreaterThan(10);
    expect(slices.filter((k) => !k.endsWith('.pgcopy'))).toEqual([]);
  });
});
