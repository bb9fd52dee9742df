import type { RecordCodec } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { ndjsonCodec } from './ndjson-codec.js';
import { ndjsonGzipCodec } from './ndjson-gzip-codec.js';

/** Ids of the codecs built into the root package. @public */
export type BuiltinCodecId = 'ndjson' | 'ndjson.gz';

/** A codec by id, or a codec itself. @public */
export type CodecSpec = BuiltinCodecId | RecordCodec;

/**
 * Turn a codec id (`'ndjson'`, `'ndjson.gz'`) or a {@link RecordCodec} into a codec.
 *
 * @example
 * ```ts
 * import { resolveCodec } from '@nucleus/ingestion';
 * const codec = resolveCodec('ndjson.gz'); // codec.extension === '.ndjson.gz'
 * ```
 * @defaultValue `'ndjson'` when `spec` is undefined
 * @throws IngestError `config_invalid` for an unknown id or an object that is no codec.
 * @public
 */
export function resolveCodec(spec: CodecSpec | undefined = 'ndjson'): RecordCodec {
  const codec = typeof spec === 'string' ? builtinCodec(spec) : isCodec(spec) ? spec : undefined;
  if (codec) return codec;
  const shown = typeof spec === 'string' ? JSON.stringify(spec) : typeof spec;
  throw new IngestError(
    'config_invalid',
    `Unknown codec ${shown}: expected 'ndjson', 'ndjson.gz' or a RecordCodec (e.g. arrowCodec() from '@nucleus/ingestion/arrow')`,
    { details: { issues: ['codec: unknown codec'] } },
  );
}

const BUILTIN: Record<BuiltinCodecId, () => RecordCodec> = { ndjson: ndjsonCodec, 'ndjson.gz': ndjsonGzipCodec };

/** The built-in codec of `id` (a {@link BuiltinCodecId}), or `undefined` for another id. @internal */
export function builtinCodec(id: string): RecordCodec | undefined {
  return Object.hasOwn(BUILTIN, id) ? BUILTIN[id as BuiltinCodecId]() : undefined;
}

/** Whether `value` is a {@link CodecSpec}: a built-in codec id or a {@link RecordCodec}. @internal */
export function isCodecSpec(value: unknown): value is CodecSpec {
  return typeof value === 'string' ? Object.hasOwn(BUILTIN, value) : isCodec(value);
}

/** Whether `value` has the shape of a {@link RecordCodec}. */
export function isCodec(value: unknown): value is RecordCodec {
  const c = value as Partial<RecordCodec> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.id === 'string' &&
    c.id.length > 0 &&
    typeof c.contentType === 'string' &&
    typeof c.extension === 'string' &&
    typeof c.encode === 'function' &&
    typeof c.decode === 'function'
  );
}
