/**
 * Run the reliability suites and write their figures into docs/guarantees.md, between the `figures:start` and
 * `figures:end` markers (nothing else in the file is touched).
 *
 *   npm run test:soak                                           # = tsx test/reliability/update-guarantees.ts --soak
 *   npx tsx test/reliability/update-guarantees.ts --run         # the PR-sized suites, then the figures
 *   npx tsx test/reliability/update-guarantees.ts               # only write the figures of .tmp/reliability/*.json
 *
 * With `--run`/`--soak` the figures of earlier runs are cleared first, the suites run in a child `vitest run
 * test/reliability` (`SOAK=1` with `--soak`; `FAULT_SEEDS` and other variables pass through), and the figures
 * are written whatever the outcome: a failed run is marked **FAILED** and lists its failed tests, and the command
 * exits with vitest's code. A run in which no test ran leaves the page alone.
 * Extra arguments after `--` go to vitest (paths among them replace `test/reliability`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = join(root, '.tmp/reliability');
const doc = join(root, 'docs/guarantees.md');
const summaryFile = join(root, '.tmp/reliability-run.json');

type Figures = Record<string, any>;

interface RunSummary {
  command: string;
  soak: boolean;
  startedAt: string;
  durationMs: number;
  loadBefore: number[];
  loadAfter: number[];
  tests?: { total: number; passed: number; failed: number; skipped: number; files: number; failedNames: string[] };
  exitCode: number;
}

function runSuites(soak: boolean, extra: string[]): RunSummary {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const report = join(root, '.tmp/reliability-vitest.json');
  rmSync(report, { force: true });
  // Paths among the extra arguments (`-- test/reliability/x.test.ts`) narrow the run; the rest are vitest flags.
  const paths = extra.filter((a) => a.startsWith('test/'));
  const args = [
    'vitest',
    'run',
    ...(paths.length > 0 ? paths : ['test/reliability']),
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...extra.filter((a) => !a.startsWith('test/')),
  ];
  const loadBefore = loadavg().map((n) => Math.round(n * 100) / 100);
  const startedAt = new Date();
  const child = spawnSync('npx', args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...(soak ? { SOAK: '1' } : {}) },
  });
  const summary: RunSummary = {
    command: soak ? 'npm run test:soak' : 'npx tsx test/reliability/update-guarantees.ts --run',
    soak,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    loadBefore,
    loadAfter: loadavg().map((n) => Math.round(n * 100) / 100),
    exitCode: child.status ?? 1,
  };
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    summary.tests = {
      total: r.numTotalTests,
      passed: r.numPassedTests,
      failed: r.numFailedTests,
      skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0),
      files: r.testResults?.length ?? 0,
      failedNames: (r.testResults ?? []).flatMap((f: { name: string; assertionResults?: any[] }) =>
        (f.assertionResults ?? [])
          .filter((a) => a.status === 'failed')
          .map((a) => `${f.name.replace(`${root}/`, '')} › ${a.title}`),
      ),
    };
  }
  writeFileSync(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

function minutes(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

function figureLines(run: RunSummary | undefined): string[] {
  const all: Record<string, Figures> = {};
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')))
      all[f.replace(/\.json$/, '')] = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  }
  const num = (v: unknown) => Number(v) || 0;
  const sum = (keys: string[], field: string) => keys.reduce((n, k) => n + num(all[k]?.[field]), 0);
  const crash = Object.keys(all).filter((k) => k.startsWith('crash-') || k === 'concurrent-workers-rounds');
  const at = Object.values(all)
    .map((f) => String(f.at))
    .sort()
    .at(-1);
  const soak = run?.soak ?? Object.values(all).some((f) => f.soak);
  const net = all['network-faults-s3'] ?? {};
  const netGet = all['network-faults-s3-import'] ?? {};
  const netUp = all['network-faults-s3-upload'] ?? {};
  const pgNet = all['network-faults-pg'] ?? {};
  const conc = all['concurrent-workers'] ?? {};
  const corrupt = all['corrupt-staging'] ?? {};
  const hostile = all['hostile-input'] ?? {};
  const secrets = all.secrets ?? {};
  const release = all['source-release'] ?? {};

  const s3Suites = [net, netGet, netUp];
  const s3Faults: Record<string, number> = {};
  for (const f of s3Suites)
    for (const [k, v] of Object.entries(f.faults ?? {})) s3Faults[k] = (s3Faults[k] ?? 0) + num(v);
  const s3FaultTotal = Object.values(s3Faults).reduce((n, x) => n + x, 0);
  const byKind = Object.entries(s3Faults)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  const seeds = (net.seeds ?? []) as Array<{ seed: number; rate: number; ms: number }>;
  const seedText = (rate: number) =>
    seeds
      .filter((s) => s.rate === rate)
      .map((s) => s.seed)
      .join(', ') || '—';

  const rowsChecked =
    sum(crash, 'rowsChecked') +
    num(pgNet.rowsChecked) +
    num(netGet.rowsChecked) +
    num(net.rowsCompared) +
    num(netUp.rowsCompared) +
    num(release.rowsChecked);
  const duplicates = sum(crash, 'duplicatesFound') + num(pgNet.duplicatesFound) + num(netGet.duplicatesFound);
  const lost = num(netGet.missingRows) + sum(crash, 'missingRows');

  const failed = run?.tests?.failedNames ?? [];
  const head = run
    ? `Last run: ${run.startedAt} (${soak ? 'SOAK=1' : 'PR suite'}) — \`${run.command}\`: ${
        run.exitCode === 0 ? 'passed, ' : '**FAILED**, '
      }${
        run.tests ? `${run.tests.passed} of ${run.tests.total} tests passed in ${run.tests.files} files` : 'tests ran'
      }, ${minutes(run.durationMs)} on 2 shared cores (load average ${run.loadBefore[0]} before, ${run.loadAfter[0]} after).`
    : `Last run: ${at ?? 'never'} (${soak ? 'SOAK=1' : 'PR suite'}) — figures of .tmp/reliability/*.json.`;
  const failures = failed.length > 0 ? ['', 'Failed:', '', ...failed.map((n) => `- ${n}`)] : [];
  return [
    head,
    ...failures,
    '',
    '| figure | value |',
    '|---|---|',
    ...(run ? [`| duration of the run | ${minutes(run.durationMs)} |`] : []),
    `| SIGKILLs survived (named points + random) | ${sum(crash, 'kills')} |`,
    `| … of which during a recovery | ${sum(crash, 'killsDuringRecovery')} |`,
    `| crash rounds (named points, random) | ${crash.reduce((n, k) => n + (all[k].rounds?.length ?? 0), 0)} |`,
    `| recovery processes run | ${sum(crash, 'recoveryRuns')} |`,
    `| invariant checks | ${sum(crash, 'invariantChecks')} |`,
    `| target rows checked (summed over checks and comparisons) | ${rowsChecked} |`,
    `| duplicates found | ${duplicates} |`,
    `| rows lost (found missing) | ${lost} |`,
    `| concurrent starts / lease_held | ${conc.concurrentStarts ?? 0} / ${conc.leaseHeld ?? 0} |`,
    `| paused holders fenced off (lease_lost) | ${conc.fencedLateCommits ?? 0} of ${conc.pauses ?? 0} |`,
    `| checkpoint versions seen (strictly increasing) | ${(conc.checkpointVersions ?? []).join(', ') || '—'} |`,
    `| S3 fault runs: seeds at 10 % / at 20 % (rows per run) | ${seedText(0.1)} / ${seedText(0.2)} (${net.rows ?? 0}) |`,
    `| S3 faults injected, by kind (all S3 suites) | ${s3FaultTotal} (${byKind || '—'}) |`,
    `| S3 requests through the seeded fault proxy | ${net.requests ?? 0} |`,
    `| S3 multipart uploads created / aborted / left incomplete | ${num(net.multipartCreated) + num(netUp.uploadsCreated)} / ${num(net.multipartAborted) + num(netUp.uploadsAborted)} / ${num(net.incompleteUploads) + num(netUp.incompleteUploads)} |`,
    `| slices compared by sha256 with a fault-free run / rows compared | ${num(net.slicesCompared) + num(netUp.slicesCompared)} / ${num(net.rowsCompared) + num(netUp.rowsCompared)} |`,
    `| slices written again by policy.retry after an upload failed past the store retry | ${netUp.slicesRewritten ?? 0} |`,
    `| S3 GETs cut mid-body during import / resumed by ranged GET | ${netGet.cuts ?? 0} / ${netGet.rangedGets ?? 0} |`,
    `| early exits of an export (failed upload, abort, lease lost) with the source on a pool of one: cases / pools checked idle afterwards | ${(release.cases ?? []).length} / ${release.poolChecks ?? 0} |`,
    `| PostgreSQL faults injected (dropped connections, terminated backends) | ${pgNet.faultsInjected ?? 0} (${pgNet.connectionsDropped ?? 0}, ${pgNet.backendsTerminated ?? 0}) |`,
    `| uncaught exceptions from dropped PostgreSQL connections | ${pgNet.uncaughtExceptions ?? 0} |`,
    `| damaged sessions refused with staging_corrupt (import attempts) | ${corrupt.stagingCorrupt ?? 0} |`,
    `| rows of damaged slices in the target | ${corrupt.rowsFromDamagedSlices ?? 0} |`,
    `| hostile-input typed errors / peak RSS under a 256 MB heap | ${hostile.typedErrors ?? 0} / ${hostile.maxRssMb ?? 0} MB |`,
    `| full disk | ${hostile.fullDisk || '—'} |`,
    `| secret failure paths searched / places / occurrences of a canary | ${(secrets.failurePaths ?? []).length} / ${secrets.placesSearched ?? 0} / ${secrets.occurrences ?? 0} |`,
  ];
}

function writeFigures(lines: string[]): void {
  const text = readFileSync(doc, 'utf8');
  const start = '<!-- figures:start -->';
  const end = '<!-- figures:end -->';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`docs/guarantees.md has no ${start} … ${end} section`);
  writeFileSync(doc, `${text.slice(0, i + start.length)}\n${lines.join('\n')}\n${text.slice(j)}`);
  // formatted with the project's Biome settings, so `npm test` (which runs `biome ci`) stays green after a soak
  const fmt = spawnSync('npx', ['biome', 'format', '--write', doc], { stdio: 'ignore' });
  if (fmt.status !== 0) console.warn(`could not format ${doc} with biome (exit ${fmt.status})`);
}

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const flags = dash < 0 ? argv : argv.slice(0, dash);
const extra = dash < 0 ? [] : argv.slice(dash + 1);
const soak = flags.includes('--soak');
const run = soak || flags.includes('--run') ? runSuites(soak, extra) : undefined;
const lines = figureLines(run);
console.log(lines.join('\n'));
// A run with no test at all (a typo in a path) says nothing about the guarantees: leave the page alone.
if (run && !run.tests?.total) {
  console.error(`\nNo test ran (exit code ${run.exitCode}): docs/guarantees.md was left as it was.`);
  process.exit(run.exitCode || 1);
}
writeFigures(lines);
console.log(`\nWrote the figures into docs/guarantees.md${run && run.exitCode !== 0 ? ' (marked FAILED)' : ''}.`);
if (run) process.exit(run.exitCode);
