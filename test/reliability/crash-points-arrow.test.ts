/**
 * Crash harness with Arrow staging between PostgreSQL endpoints — the transcoded byte paths (COPY text → Arrow
 * record batches on export, Arrow → COPY text on import, no row objects): every named crash point and a kill of the
 * resuming process, filesystem staging, `merge` (through the sink's temporary table). The invariants hold after each
 * kill and after the recovery, exactly as on the row path.
 */
import { describe, expect, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { type CrashSetup, namedCrashRound, resumeCrashRound, useCrashSetup } from './crash-suite.js';
import { POINTS } from './workers/crash-worker-points.js';

const pg = usePostgres('rel_cp_arrow');
const base = useCrashSetup('crash-points-arrow', pg, 'merge', 'fs');
/** The same setup, with the worker staging through `arrowCodec()`. */
const s: CrashSetup = new Proxy(base, {
  get: (t, p) => (p === 'env' ? () => ({ ...t.env(), CODEC: 'arrow' }) : Reflect.get(t, p)),
});

describe('crash at every named point — Arrow staging transcoded, filesystem staging, merge', () => {
  for (const point of POINTS.filter((p) => p !== 'resume')) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(s, point), 120_000);
  }
  it(
    'a SIGKILL of the process that resumes a crashed run loses and duplicates nothing',
    () => resumeCrashRound(s),
    180_000,
  );
  it('the rounds staged Arrow slices only (the Arrow codec really ran)', async () => {
    const keys: string[] = [];
    for await (const info of s.store().list(`${s.prefix}/`)) keys.push(info.key);
    const slices = keys.filter((k) => /\/\d{6}\.[a-z.]+$/.test(k));
    expect(slices.length).toBeGreaterThan(10);
    expect(slices.filter((k) => !k.endsWith('.arrows'))).toEqual([]);
  });
});
