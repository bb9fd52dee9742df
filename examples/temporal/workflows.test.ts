import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { NON_RETRYABLE_ERROR_TYPES } from '../../src/temporal/index.js';
import { nonRetryableErrorTypes } from './non-retryable.js';

describe('examples/temporal', () => {
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
