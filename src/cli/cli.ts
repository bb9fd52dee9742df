import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { IngestError } from '../errors/ingest-error.js';
import type { EndpointRegistry } from '../registry/endpoint-registry.js';
import { SCHEMA_CONTRACT_MODES, type SchemaContractMode } from '../schema/schema-contract.js';
import { createCliRegistry } from './builtins.js';
import { abandonCommand } from './commands/abandon.js';
import { cdcCommand } from './commands/cdc.js';
import { previewCommand } from './commands/preview.js';
import { pruneCommand } from './commands/prune.js';
import { runCommand } from './commands/run.js';
import { statusCommand } from './commands/status.js';
import { sweepCommand } from './commands/sweep.js';
import { templatesCommand } from './commands/templates.js';
import { parseDuration } from './duration.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { loadPipelineFile } from './pipeline-file.js';
import { describeError, errorLine, JsonLinesReporter, type Reporter, TextReporter } from './reporter.js';

/** A stream the CLI writes to. @internal */
export interface CliStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** What the CLI talks to; `process` by default, replaceable in tests. @internal */
export interface CliIo {
  stdout: CliStream;
  stderr: CliStream;
  env: NodeJS.ProcessEnv;
  /** Registers the Ctrl-C handler; returns a function that removes it. */
  onInterrupt(handler: () => void): () => void;
  registry?: EndpointRegistry;
}

export const USAGE = `Usage: nucleus-ingest <command> [options]

Commands:
  run <pipeline.json|yaml> [--unit <id>]... [--mode full|incremental] [--schema-contract <mode>]
                              run units: source → staging → sink, then commit the checkpoint
  templates                   registered endpoints and their config JSON Schema
  preview <pipeline> <unit> [--limit <n>]
                              first rows of a unit (nothing staged, no state changed)
  status <pipeline> <unit>    checkpoint, run state and lease of a unit
  abandon <pipeline> <unit>...
                              drop the unit's pending run; the checkpoint stays where it was
  sweep <pipeline> --older-than <duration> [--abandoned-after <duration>]
                              delete landed staging sessions older than the duration (e.g. 7d, 12h)
  cdc status <pipeline> [unit]  replication slots of a postgres.cdc source: WAL status, retained WAL, lag
  cdc drop-slot <pipeline> <unit>
                              drop the unit's slot (only when asked; its next --mode full run snapshots again)
  prune <pipeline> [<unit>...] --older-than <duration>
                              expire run receipts and the sink's ledger rows older than the duration

Every command names units the same way: after the pipeline file, or with -u/--unit <id> (repeatable).
A unit the pipeline file does not list is refused (exit 2).

Options:
  --json          JSON lines on stdout (events, results) instead of text
  --pretty        draw the live progress line even when stdout is not a terminal
  -v, --verbose   more log output (on stderr)
  -h, --help      this help
  --version       the package version

Output: text on stdout (a live progress line only on a terminal), errors on stderr as "error [code]: message".
Secrets: write \${env:NAME} in the pipeline file; the value is read from the environment and masked in output.
Exit codes: 0 ok, 2 usage or config error, 3 retryable failure (run again to resume),
            4 permanent failure, 130 interrupted (the run stays resumable).
`;

const OPTIONS = {
  unit: { type: 'string', short: 'u', multiple: true },
  mode: { type: 'string' },
  'schema-contract': { type: 'string' },
  limit: { type: 'string' },
  'older-than': { type: 'string' },
  'abandoned-after': { type: 'string' },
  json: { type: 'boolean' },
  pretty: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

const COMMANDS = ['run', 'templates', 'preview', 'status', 'sweep', 'abandon', 'prune', 'cdc', 'help'] as const;

/** A unit the pipeline file does not list (when it lists units) is refused, for every command. */
function assertKnownUnits(file: { units?: string[] }, units: string[]): void {
  if (!file.units) return;
  const unknown = units.filter((u) => !file.units!.includes(u));
  if (unknown.length === 0) return;
  throw new IngestError(
    'config_invalid',
    `Unknown unit${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}: the pipeline file lists ${file.units.map((u) => JSON.stringify(u)).join(', ') || 'none'}`,
    { details: { unknown, units: file.units } },
  );
}

function usageError(message: string): IngestError {
  return new IngestError('config_invalid', `${message} (see nucleus-ingest --help)`, { details: { usage: true } });
}

function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@nucleus/ingestion') return pkg.version ?? 'unknown';
    } catch {
      // keep walking up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/**
 * The `nucleus-ingest` command line. Returns the process exit code.
 * @internal
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr.write(`error [config_invalid]: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT.config;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    io.stdout.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    (command === undefined && !values.help ? io.stderr : io.stdout).write(USAGE);
    return command === undefined && !values.help ? EXIT.config : EXIT.ok;
  }
  if (values.json && values.pretty) {
    io.stderr.write(errorLine(describeError(usageError('Pass either --json or --pretty, not both'))));
    return EXIT.config;
  }
  // Text unless --json; the progress line only on a terminal (or with --pretty).
  const text = !values.json;
  const reporter: Reporter = text
    ? new TextReporter(io.stdout, io.stderr, {
        verbose: values.verbose,
        progress: values.pretty === true || io.stdout.isTTY === true,
      })
    : new JsonLinesReporter(io.stdout, io.stderr, values.verbose);

  const controller = new AbortController();
  let interrupted = false;
  const removeInterrupt = io.onInterrupt(() => {
    interrupted = true;
    reporter.logger.warn('Interrupted: stopping the run; it stays resumable (press Ctrl-C again to exit at once)');
    controller.abort(new IngestError('aborted', 'Interrupted by the user (SIGINT); the run stays resumable'));
  });
  try {
    if (!(COMMANDS as readonly string[]).includes(command)) throw usageError(`Unknown command "${command}"`);
    const registry = io.registry ?? (await createCliRegistry());
    if (command === 'templates') {
      if (args.length > 0) throw usageError('templates takes no arguments');
      return templatesCommand(registry, reporter, io.stdout, text);
    }
    if (command === 'cdc') {
      // units named as for every command: after the pipeline file, or with -u/--unit
      const [verb, path, ...positional] = args;
      const cdcUnits = [...positional, ...(values.unit ?? [])];
      if (!path || cdcUnits.length > 1)
        throw usageError('cdc needs an action (status, drop-slot), a pipeline file and at most one unit id');
      const file = await loadPipelineFile(path, io.env);
      assertKnownUnits(file, cdcUnits);
      const unitId = cdcUnits[0];
      return await cdcCommand({ verb, file, registry, unitId, reporter, out: text ? io.stdout : undefined });
    }
    const [pipelinePath, ...positionalUnits] = args;
    if (!pipelinePath) throw usageError(`${command} needs a pipeline file`);
    // one way to name units for every command: positionals after the pipeline file and -u/--unit, merged
    const units = [...positionalUnits, ...(values.unit ?? [])];
    const oneUnit = command === 'preview' || command === 'status';
    if (command === 'sweep' && units.length > 0) throw usageError(`Unexpected argument "${units[0]}"`);
    if (oneUnit && units.length !== 1) {
      throw usageError(
        units.length === 0 ? `${command} needs a pipeline file and a unit id` : `${command} takes one unit`,
      );
    }
    if (command === 'abandon' && units.length === 0) {
      throw usageError('abandon needs the unit whose pending run to drop: abandon <pipeline> <unit>');
    }
    const unitArg = units[0];
    if (values.mode !== undefined && values.mode !== 'full' && values.mode !== 'incremental') {
      throw usageError(`Expected \`--mode\` to be full or incremental, got "${values.mode}"`);
    }
    const contract = values['schema-contract'];
    if (contract !== undefined && !(SCHEMA_CONTRACT_MODES as readonly string[]).includes(contract)) {
      throw usageError(
        `Expected \`--schema-contract\` to be one of ${SCHEMA_CONTRACT_MODES.join(', ')}, got "${contract}"`,
      );
    }
    const file = await loadPipelineFile(pipelinePath, io.env);
    assertKnownUnits(file, units);
    switch (command) {
      case 'run':
        return await runCommand({
          file,
          registry,
          reporter,
          units: units.length > 0 ? units : (file.units ?? []),
          mode: values.mode as 'full' | 'incremental' | undefined,
          ...(contract ? { schemaContract: contract as SchemaContractMode } : {}),
          signal: controller.signal,
          interrupted: () => interrupted,
        });
      case 'preview': {
        const limit = values.limit === undefined ? 10 : Number(values.limit);
        if (!Number.isInteger(limit) || limit <= 0 || limit > 10_000) {
          throw usageError(`Expected \`--limit\` to be an integer from 1 to 10000, got "${values.limit}"`);
        }
        return await previewCommand({
          file,
          registry,
          unitId: unitArg!,
          limit,
          reporter,
          signal: controller.signal,
          tty: text,
          out: io.stdout,
        });
      }
      case 'status':
        return await statusCommand(file, unitArg!, reporter, text ? io.stdout : undefined, registry);
      case 'abandon':
        return await abandonCommand(file, units, reporter, { signal: controller.signal });
      case 'prune': {
        if (!values['older-than']) throw usageError('prune needs --older-than <duration>, e.g. 30d');
        const olderThanMs = parseDuration(values['older-than'], '--older-than');
        return await pruneCommand(file, registry, units, { olderThanMs, signal: controller.signal }, reporter);
      }
      default: {
        if (!values['older-than']) throw usageError('sweep needs --older-than <duration>, e.g. 7d');
        const olderThanMs = parseDuration(values['older-than'], '--older-than');
        const abandoned = values['abandoned-after'];
        return await sweepCommand(
          file,
          {
            olderThanMs,
            abandonedAfterMs: abandoned === undefined ? undefined : parseDuration(abandoned, '--abandoned-after'),
          },
          reporter,
        );
      }
    }
  } catch (err) {
    reporter.error(err);
    return exitCodeFor(err, interrupted);
  } finally {
    removeInterrupt();
  }
}
