import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { mySqlConnectionStringIssues } from '../mysql/connection-string.js';
import { connectionStringProblem } from '../postgres/connection-string.js';
import { SCHEMA_CONTRACT_MODES } from '../schema/schema-contract.js';
import { resolveEnvRefs } from './env-refs.js';

const endpointSchema = (role: string) =>
  z
    .object({
      type: z
        .string({
          error: `Expected \`${role}.type\` to be a registered endpoint id (see \`nucleus-ingest templates\`)`,
        })
        .min(1),
      id: z.string().min(1).optional(),
      vendor: z.string().min(1).optional(),
      config: z.unknown().optional(),
    })
    .strict();

const stagingSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('memory') }).strict(),
  z
    .object({
      type: z.literal('filesystem'),
      root: z.string({ error: 'Expected `staging.root` to be a directory path' }).min(1),
      prefix: z.string().min(1).optional(),
      codec: z.enum(['ndjson', 'ndjson.gz', 'arrow', 'pg-copy', 'mysql-tsv']).optional(),
    })
    .strict(),
]);

const kvSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('memory') }).strict(),
  z
    .object({ type: z.literal('file'), path: z.string({ error: 'Expected `kv.path` to be a file path' }).min(1) })
    .strict(),
  z
    .object({
      type: z.literal('postgres'),
      connectionString: z.string({ error: 'Expected `kv.connectionString` to be a postgres:// URL' }),
      table: z.string().min(1).optional(),
      schema: z.string().min(1).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('mysql'),
      connectionString: z.string({ error: 'Expected `kv.connectionString` to be a mysql:// URL' }),
      table: z.string().min(1).optional(),
      database: z.string().min(1).optional(),
    })
    .strict(),
]);

const contractMode = z.enum(SCHEMA_CONTRACT_MODES, {
  error: `Expected a schema contract mode: ${SCHEMA_CONTRACT_MODES.join(', ')}`,
});
const schemaContractSchema = z.union([
  contractMode,
  z.object({ columns: contractMode.optional(), dataType: contractMode.optional() }).strict(),
]);

const pipelineSchema = z
  .object({
    version: z.literal(1).optional(),
    workspaceId: z.string().min(1).optional(),
    source: endpointSchema('source'),
    sink: endpointSchema('sink'),
    staging: stagingSchema.optional(),
    kv: kvSchema.optional(),
    units: z.array(z.string().min(1)).optional(),
    mode: z.enum(['full', 'incremental']).optional(),
    disposition: z.enum(['append', 'replace', 'merge']).optional(),
    primaryKey: z.array(z.string().min(1)).min(1).optional(),
    policy: z.record(z.string(), z.unknown()).optional(),
    /** Every unit's schema contract (docs/schema-evolution.md); `schemaContracts` overrides it per unit. */
    schemaContract: schemaContractSchema.optional(),
    schemaContracts: z.record(z.string(), schemaContractSchema).optional(),
  })
  .strict()
  .superRefine((file, ctx) => {
    // Every CLI invocation is a new process: rows staged in memory are gone when it ends, so a run state kept
    // in a file or database would point the next run at a session that no longer exists.
    if (file.staging?.type === 'memory' && file.kv?.type !== 'memory') {
      ctx.addIssue({
        code: 'custom',
        path: ['staging'],
        message:
          'staging type "memory" cannot be resumed by a later run; use `staging: { type: filesystem, root }`, or `kv: { type: memory }` as well',
      });
    }
  });

/**
 * A pipeline file: which source, sink, staging and KvStore to use, by id and config.
 * Relative paths (`staging.root`, `kv.path`, endpoint configs) are relative to the working directory.
 * @public
 */
export type PipelineFile = z.infer<typeof pipelineSchema>;

/** Default staging and KvStore: on disk in the working directory, so an interrupted run can resume. */
export const DEFAULT_STATE_DIR = '.nucleus';

/**
 * Read a pipeline file (`.json`, `.yaml` or `.yml`), resolve `${env:NAME}` references (registering the values as
 * secrets) and validate it.
 * @throws IngestError `config_invalid` for a missing or malformed file, an unset variable, or any schema issue
 * @internal
 */
export async function loadPipelineFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<PipelineFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw IngestError.wrap(err, 'config_invalid', `Cannot read pipeline file ${path}`);
  }
  let raw: unknown;
  try {
    raw = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new IngestError(
      'config_invalid',
      `Pipeline file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  const res = pipelineSchema.safeParse(raw);
  if (!res.success) throw configInvalid(`Invalid pipeline file ${path}`, res.error.issues);
  const file = resolveEnvRefs(res.data, env);
  // Checked after `${env:…}` references are resolved: the value that will be used is the one that must be valid.
  if (file.kv?.type === 'postgres') {
    const problem = connectionStringProblem(file.kv.connectionString, 'kv.connectionString');
    if (problem) {
      throw new IngestError('config_invalid', `Invalid pipeline file ${path}: kv.connectionString: ${problem}`, {
        details: { issues: [{ path: 'kv.connectionString', message: problem, code: 'custom' }] },
      });
    }
  }
  if (file.kv?.type === 'mysql') {
    const problem = mySqlConnectionStringIssues(file.kv.connectionString).join('; ');
    if (problem) {
      throw new IngestError('config_invalid', `Invalid pipeline file ${path}: kv.connectionString: ${problem}`, {
        details: { issues: [{ path: 'kv.connectionString', message: problem, code: 'custom' }] },
      });
    }
  }
  const staging = file.staging ?? { type: 'filesystem', root: `${DEFAULT_STATE_DIR}/staging` };
  const kv = file.kv ?? { type: 'file', path: `${DEFAULT_STATE_DIR}/kv-store.json` };
  return {
    ...file,
    staging: staging.type === 'filesystem' ? { ...staging, root: resolve(staging.root) } : staging,
    kv: kv.type === 'file' ? { ...kv, path: resolve(kv.path) } : kv,
  };
}
