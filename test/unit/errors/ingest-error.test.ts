import { describe, expect, it } from 'vitest';
import { ERROR_CODES, IngestError, redact, registerSecret } from '../../../src/index.js';

describe('IngestError', () => {
  it('carries code, details and cause; an unknown cause of a failure code is not retryable (ADR 0017)', () => {
    const cause = new Error('boom');
    const e = new IngestError('sink_failed', 'Sink failed (unit u)', { cause, details: { slice: 3 } });
    expect(e.code).toBe('sink_failed');
    expect(e.retryable).toBe(false);
    expect(new IngestError('lease_held', 'held').retryable).toBe(ERROR_CODES.lease_held.retryable);
    expect(e.details).toEqual({ slice: 3 });
    expect((e.cause as Error).message).toBe('boom');
    expect(IngestError.is(e, 'sink_failed')).toBe(true);
    expect(IngestError.is(e, 'aborted')).toBe(false);
    expect(JSON.parse(JSON.stringify(e))).toMatchObject({
      code: 'sink_failed',
      retryable: false,
      details: { slice: 3 },
    });
  });

  it('treats transient network errors as retryable even under a non-retryable code', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(new IngestError('staging_corrupt', 'x', { cause: reset }).retryable).toBe(true);
    expect(new IngestError('config_invalid', 'x').retryable).toBe(false);
  });

  it('wrap keeps an IngestError and its code', () => {
    const inner = new IngestError('staging_corrupt', 'bad slice');
    expect(IngestError.wrap(inner, 'sink_failed', 'outer')).toBe(inner);
    const wrapped = IngestError.wrap(new TypeError('nope'), 'sink_failed', 'Sink failed');
    expect(wrapped.code).toBe('sink_failed');
    expect(wrapped.message).toBe('Sink failed: nope');
  });

  it('never carries a secret in its message, details or cause chain', () => {
    const token = 'tok_live_8f2a9c1e77b04d';
    registerSecret(token);
    const deep = new Error(
      `connect to postgres://app:s3cr3t-pass@db:5432/x failed, header Authorization: Bearer ${token}`,
    );
    const mid = new Error('password=hunter2-long; retrying', { cause: deep });
    const e = new IngestError('source_failed', `Source failed: postgresql://u:s3cr3t-pass@h/db token=${token}`, {
      cause: mid,
      details: {
        connectionString: 'postgres://u:s3cr3t-pass@h/db',
        // details are data: a registered secret is masked wherever it is, an unregistered value is not a secret
        nested: { password: token, note: `x ${token}` },
      },
    });
    const seen: string[] = [e.message, JSON.stringify(e.details), e.stack ?? ''];
    for (let c: unknown = e.cause; c; c = (c as { cause?: unknown }).cause)
      seen.push(String((c as Error).message), String((c as Error).stack));
    const all = seen.join('\n');
    for (const secret of ['s3cr3t-pass', 'hunter2-long', token]) expect(all).not.toContain(secret);
    expect(e.message).toContain('postgresql://u:***@h/db');
  });

  it('redact masks URL credentials, key=value secrets and bearer tokens', () => {
    expect(redact('s3://AKIA:abc/def@bucket')).not.toContain('abc/def');
    expect(redact('aws_secret_access_key=wJalrXUtnFEMI/K7MDENG')).toBe('aws_secret_access_key=***');
    expect(redact('Authorization: Basic dXNlcjpwYXNz')).not.toContain('dXNlcjpwYXNz');
    expect(redact('nothing to hide here')).toBe('nothing to hide here');
  });
});
