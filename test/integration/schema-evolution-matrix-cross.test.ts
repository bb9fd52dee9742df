/**
 * The schema-change matrix of issue 21 across engines (schema-evolution.test.ts has one PostgreSQL → MariaDB and one
 * MariaDB → PostgreSQL merge with NDJSON): a PostgreSQL source into a target the MySQL sink created and evolves, and a
 * MariaDB source into a PostgreSQL target, with `ndjson.gz` merge, Arrow append and NDJSON and Arrow replace, across
 * add, widen, drop, relax, narrow, rename, reorder, tighten; each run compared with the source as text both ways.
 * (A pass-through codec is one engine's bytes, so it has no cross-engine cell.)
 */

import { describe, it } from 'vitest';
import { changeKinds, unitOf, useEngines } from './schema-evolution-matrix-kit.js';

const { postgres, mariadb } = useEngines('evmatrixx');

describe.each([
  { from: postgres, to: mariadb },
  { from: mariadb, to: postgres },
])('schema-change matrix across engines: $from.name → $to.name', ({ from, to }) => {
  it.each([
    ['ndjson.gz', 'merge'],
    ['arrow', 'append'],
    ['ndjson', 'replace'],
    ['arrow', 'replace'],
  ] as const)(
    '%s staging, %s: add, widen, drop, relax, narrow, rename, reorder, tighten equal the source as text',
    async (codec, disposition) => {
      const u = unitOf(from, codec, disposition, `x${codec.replace(/[^a-z]/g, '')}${disposition[0]}`, to);
      await changeKinds(from, u);
    },
  );
});
