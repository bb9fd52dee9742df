/**
 * The PostgreSQL network-fault suite (network-faults-pg.test.ts: dropped connections, `pg_terminate_backend` during
 * COPY and at COMMIT) with the pg-copy pass-through: staged COPY text fed to the sink's COPY unchanged. No slice is
 * ever partly visible, no row is duplicated, every failure is retryable and a retry succeeds.
 */
process.env.CODEC = 'pg-copy';
await import('./network-faults-pg.test.js');
