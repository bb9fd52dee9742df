import { fileURLToPath } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import ts from 'typescript';
import { describe, expect, it, vi } from 'vitest';
import { EndpointRegistry, ERROR_CODES, MemoryKvStore, MemoryStagingProvider } from '../../src/index.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../../src/temporal/index.js';
import { MemorySink, MemorySource, memorySinkDescriptor, memorySourceDescriptor } from '../../src/testing/index.js';
import { createActivities } from './activities.js';
import { nonRetryableErrorTypes } from './non-retryable.js';

/**
 * Activities the workflow under test calls: the real ones, run in Temporal's MockActivityEnvironment; a failure
 * reaches the workflow wrapped in an ActivityFailure, as Temporal delivers it. Calls are recorded in order.
 */
const calls: string[] = [];
let impl: Record<string, (input: any) => Promise<any>> = {};
vi.mock('@temporalio/workflow', async (original) => ({
  ...(await original<typeof import('@temporalio/workflow')>()),
  proxyActivities: () =>
    new Proxy(
      {},
      {
        get: (_t, name: string) => async (input: unknown) => {
          calls.push(name);
          try {
            return await impl[name]!(input);
          } catch (err) {
            throw new ActivityFailure('activity failed', name, '1', 'NON_RETRYABLE_FAILURE', 'test', err as Error);
          }
        },
      },
    ),
}));

function wire(rows: Array<Record<string, unknown>>) {
  const sink = new MemorySink();
  const acts = createActivities({
    registry: new EndpointRegistry()
      .register(memorySourceDescriptor, (config) => new MemorySource(config))
      .register(memorySinkDescriptor, () => sink),
    staging: new MemoryStagingProvider(),
    kv: new MemoryKvStore(),
    endpoints: {
      crm: { endpointId: 'memory', config: { units: { users: { rows, cursorColumns: ['id'] } } } },
      lake: { endpointId: 'memory', config: {} },
    },
    defaultSinkId: 'lake',
  });
  const failures: Array<{ code: string; message: string }> = [];
  impl = {
    startIngestionRun: (i) => acts.startIngestionRun(i),
    completeIngestionRun: (i) => acts.completeIngestionRun(i),
    failIngestionRun: async (i) => {
      failures.push({ code: i.code, message: i.message });
      return acts.failIngestionRun(i);
    },
    runIngestionUnit: (i) => new MockActivityEnvironment({ activityId: 'ingest-users' }).run(acts.runIngestionUnit, i),
  };
  calls.length = 0;
  return { sink, failures };
}

describe('examples/temporal', () => {
  it('the workflow and the worker type-check (examples/tsconfig.json)', { timeout: 120_000 }, () => {
    const configPath = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
    const parsed = ts.getParsedCommandLineOfConfigFile(
      configPath,
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        },
      },
    )!;
    const files = parsed.fileNames.filter((f) => f.includes('/examples/temporal/') && !f.endsWith('.test.ts'));
    expect(files.map((f) => f.split('/').pop()).sort()).toEqual([
      'activities.ts',
      'non-retryable.ts',
      'worker.ts',
      'workflows.ts',
    ]);
    const program = ts.createProgram(files, { ...parsed.options, noEmit: true });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(errors).toEqual([]);
  });

  it('start → run unit → complete: the rows land and the host hears of the result', async () => {
    const { sink, failures } = wire([{ id: 1 }, { id: 2 }, { id: 3 }]);
    const { ingestionRunWorkflow } = await import('./workflows.js');
    const result = await ingestionRunWorkflow({ endpointId: 'crm', unitId: 'users' });
    expect(calls).toEqual(['startIngestionRun', 'runIngestionUnit', 'completeIngestionRun']);
    expect(result.stats.rowsImported).toBe(3);
    expect(sink.rows('users')).toHaveLength(3);
    expect(failures).toEqual([]);
  });

  it('start → run unit → fail: the host gets the IngestError code, the workflow rethrows', async () => {
    const { failures } = wire([{ id: 1 }]);
    const { ingestionRunWorkflow } = await import('./workflows.js');
    const err = await ingestionRunWorkflow({ endpointId: 'crm', unitId: 'nope' }).catch((e) => e);
    expect(err).toBeInstanceOf(ActivityFailure);
    expect(err.cause).toBeInstanceOf(ApplicationFailure);
    expect(calls).toEqual(['startIngestionRun', 'runIngestionUnit', 'failIngestionRun']);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.code).toBe((err.cause as ApplicationFailure).type);
    expect(Object.keys(ERROR_CODES)).toContain(failures[0]!.code);
  });

  it('the workflow bundles for the Temporal sandbox (no Node-only import leaks into it)', async () => {
    const { code } = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./workflows.ts', import.meta.url)),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    expect(code).toContain('ingestionRunWorkflow');
    expect(code).not.toMatch(/node_modules\/@temporalio\/activity\//);
    expect(code).not.toMatch(/node_modules\/zod\//);
  }, 120_000);

  it("the workflow's nonRetryableErrorTypes are the library's non-retryable codes", () => {
    expect([...nonRetryableErrorTypes].sort()).toEqual([...NON_RETRYABLE_ERROR_TYPES].sort());
  });
});
