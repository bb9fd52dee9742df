/**
 * Per test file: name the file in `application_name` of every PostgreSQL connection it opens (pg reads PGAPPNAME),
 * so `pg_stat_activity` shows which file holds connections when the server runs short of them.
 */
import { basename } from 'node:path';
import { expect } from 'vitest';

process.env.PGAPPNAME = `vitest ${basename(expect.getState().testPath ?? '')}`.slice(0, 63);
