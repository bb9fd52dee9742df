/**
 * The concurrent-workers suite (concurrent-workers.test.ts: four workers starting at once, lease holders paused past
 * their TTL and fenced off when they continue) with the crash worker staging through the pg-copy pass-through
 * (`CODEC=pg-copy`, inherited by every worker process).
 */
process.env.CODEC = 'pg-copy';
await import('./concurrent-workers.test.js');
