import type { z } from 'zod';
import { IngestError } from './ingest-error.js';

/**
 * The `config_invalid` error for failed zod validation: one message listing every issue (`path: message`), and the
 * issues in `details.issues`. Used at every public boundary that validates options (runUnit, endpoints, stores, CLI).
 * @internal
 */
export function configInvalid(prefix: string, issues: readonly z.core.$ZodIssue[]): IngestError {
  const list = issues.map((i) => ({
    path: i.path.map(String).join('.') || '(root)',
    message: i.message,
    code: i.code,
  }));
  const text = list.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new IngestError('config_invalid', `${prefix}: ${text}`, { details: { issues: list } });
}
