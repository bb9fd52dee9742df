import { describe, expect, it } from 'vitest';
import { mergePolicy } from '../../../src/host/host-options.js';
import { jobRunId, temporalRunId } from '../../../src/host/run-id.js';
import { stagingChoice } from '../../../src/host/staging-choice.js';
import { IngestError, type StagingProvider } from '../../../src/index.js';

const provider = (id: string) => ({ id, allocateSession() {}, openSession() {} }) as unknown as StagingProvider;
const a = provider('a');
const b = provider('b');

describe('stagingChoice', () => {
  it('picks by key or provider id, defaults to the only provider or the one given', () => {
    expect(stagingChoice(a, undefined, 'w')(undefined, 'x')).toBe(a);
    const pick = stagingChoice({ s3: a, local: b }, 'local', 'w');
    expect([pick(undefined, 'x'), pick('s3', 'x'), pick('a', 'x')]).toEqual([b, a, a]);
  });

  it('refuses bad providers at once and unknown ids when asked, naming where', () => {
    const fail = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(IngestError.is(err, 'config_invalid')).toBe(true);
        return (err as Error).message;
      }
      throw new Error('expected a throw');
    };
    expect(fail(() => stagingChoice({}, undefined, 'Invalid opts'))).toBe(
      'Invalid opts: staging: Expected at least one StagingProvider',
    );
    expect(fail(() => stagingChoice({ s3: {} as never }, undefined, 'Invalid opts'))).toMatch(/"s3" is not a/);
    expect(fail(() => stagingChoice(a, 'z', 'Invalid opts'))).toMatch(/defaultStagingProviderId: "z"/);
    const pick = stagingChoice({ s3: a, local: b }, undefined, 'w');
    expect(fail(() => pick(undefined, 'Job 1'))).toBe(
      'Job 1: stagingProviderId: unknown staging provider "(none)" (known: s3, a, local, b)',
    );
  });
});

describe('run ids and policies', () => {
  it('derive run ids deterministically from the orchestrator ids', () => {
    expect(jobRunId('unit.default.crm:users', 36)).toBe('bullmq.unit.default.crm_users.10');
    expect(temporalRunId({ workflowRunId: 'wf', activityId: 'a' })).toBe('wf:a');
    expect(temporalRunId({ workflowRunId: 'wf', activityId: 'a/b' })).toMatch(/^wf:a_b-[0-9a-f]{16}$/);
  });

  it("merges the call's policy over the host's, retry one level deeper", () => {
    expect(mergePolicy({ chunkSize: 5, retry: { maxAttempts: 2 } }, { retry: { baseDelayMs: 1 } })).toEqual({
      chunkSize: 5,
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    expect(mergePolicy(undefined, undefined)).toEqual({});
  });
});
