/**
 * Write the figures of the last reliability run (`.tmp/reliability/*.json`, written by the suites) into
 * docs/guarantees.md, between the `figures:start` and `figures:end` markers.
 *
 *   npx vitest run test/reliability && npx tsx test/reliability/update-guarantees.ts
 *   npm run test:soak && npx tsx test/reliability/update-guarantees.ts      (SOAK=1 counts)
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = join(root, '.tmp/reliability');
const doc = join(root, 'docs/guarantees.md');

type Figures = Record<string, any>;
const all: Record<string, Figures> = {};
for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')))
  all[f.replace(/\.json$/, '')] = JSON.parse(readFileSync(join(dir, f), 'utf8'));

const sum = (keys: string[], field: string) => keys.reduce((n, k) => n + (Number(all[k]?.[field]) || 0), 0);
const crash = Object.keys(all).filter((k) => k.startsWith('crash-') || k === 'concurrent-workers-rounds');
const at = Object.values(all)
  .map((f) => String(f.at))
  .sort()
  .at(-1);
const soak = Object.values(all).some((f) => f.soak);
const net = all['network-faults-s3'] ?? {};
const pgNet = all['network-faults-pg'] ?? {};
const conc = all['concurrent-workers'] ?? {};
const corrupt = all['corrupt-staging'] ?? {};
const hostile = all['hostile-input'] ?? {};
const secrets = all.secrets ?? {};

const lines = [
  `Last run: ${at ?? 'never'}${soak ? ' (SOAK=1)' : ' (PR suite)'} — \`npx vitest run test/reliability && npx tsx test/reliability/update-guarantees.ts\`.`,
  '',
  '| figure | value |',
  '|---|---|',
  `| SIGKILLs survived (named points + random) | ${sum(crash, 'kills')} |`,
  `| … of which during a recovery | ${sum(crash, 'killsDuringRecovery')} |`,
  `| crash rounds (named points, random) | ${crash.reduce((n, k) => n + (all[k].rounds?.length ?? 0), 0)} |`,
  `| recovery processes run | ${sum(crash, 'recoveryRuns')} |`,
  `| invariant checks | ${sum(crash, 'invariantChecks')} |`,
  `| target rows checked (summed over checks) | ${sum(crash, 'rowsChecked') + (Number(pgNet.rowsChecked) || 0)} |`,
  `| duplicates found | ${sum(crash, 'duplicatesFound') + (Number(pgNet.duplicatesFound) || 0)} |`,
  `| concurrent starts / lease_held | ${conc.concurrentStarts ?? 0} / ${conc.leaseHeld ?? 0} |`,
  `| paused holders fenced off (lease_lost) | ${conc.fencedLateCommits ?? 0} of ${conc.pauses ?? 0} |`,
  `| checkpoint versions seen (strictly increasing) | ${(conc.checkpointVersions ?? []).join(', ') || '—'} |`,
  `| S3 requests through the fault proxy / faults injected | ${net.requests ?? 0} / ${net.faultsInjected ?? 0} (${Object.entries(
    net.faults ?? {},
  )
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')}) |`,
  `| S3 multipart uploads created / left incomplete | ${net.multipartCreated ?? 0} / 0 |`,
  `| slices compared byte for byte / rows compared | ${net.slicesCompared ?? 0} / ${net.rowsCompared ?? 0} |`,
  `| PostgreSQL faults injected (dropped connections, terminated backends) | ${pgNet.faultsInjected ?? 0} (${pgNet.connectionsDropped ?? 0}, ${pgNet.backendsTerminated ?? 0}) |`,
  `| uncaught exceptions from dropped PostgreSQL connections | ${pgNet.uncaughtExceptions ?? 0} |`,
  `| damaged sessions refused with staging_corrupt (import attempts) | ${corrupt.stagingCorrupt ?? 0} |`,
  `| rows of damaged slices in the target | ${corrupt.rowsFromDamagedSlices ?? 0} |`,
  `| hostile-input typed errors / peak RSS under a 256 MB heap | ${hostile.typedErrors ?? 0} / ${hostile.maxRssMb ?? 0} MB |`,
  `| full disk | ${hostile.fullDisk || '—'} |`,
  `| secret failure paths searched / places / occurrences of a canary | ${(secrets.failurePaths ?? []).length} / ${secrets.placesSearched ?? 0} / ${secrets.occurrences ?? 0} |`,
];

const text = readFileSync(doc, 'utf8');
const start = '<!-- figures:start -->';
const end = '<!-- figures:end -->';
const i = text.indexOf(start);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error(`docs/guarantees.md has no ${start} … ${end} section`);
writeFileSync(doc, `${text.slice(0, i + start.length)}\n${lines.join('\n')}\n${text.slice(j)}`);
console.log(lines.join('\n'));
