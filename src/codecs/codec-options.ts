import type { z } from 'zod';
import { IngestError } from '../errors/ingest-error.js';

/** Validate options with zod; every issue is listed in one `config_invalid` error. */
export function parseCodecOptions<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(options)'}: ${i.message}`);
  throw new IngestError('config_invalid', `Invalid ${where} options: ${issues.join('; ')}`, { details: { issues } });
}
