import { IngestError } from '../errors/ingest-error.js';
import { objectKeyProblem } from '../util/object-key.js';

/*
 * Object layout of one staging session (see docs/staging.md):
 *
 *   <prefix>/<workspaceId>/<endpointId>/<runId>/000000<ext>   one object per slice (index zero-padded to 6 digits)
 *   <prefix>/<workspaceId>/<endpointId>/<runId>/manifest.json
 *   <prefix>/<workspaceId>/<endpointId>/<runId>/_SUCCESS      sealed
 *   <prefix>/<workspaceId>/<endpointId>/<runId>/_LANDED       the sink committed
 *   <prefix>/<workspaceId>/<endpointId>/<runId>/_ABANDONED    the run was abandoned (swept like a landed one)
 *
 * Each id is one key segment: bytes outside [A-Za-z0-9._-] are percent-encoded (UTF-8), and the segments
 * `.` and `..` are written `%2E` and `%2E%2E`, so no id can add a segment or climb out of the prefix.
 */

/** Name of the manifest object in a run directory. */
export const MANIFEST_NAME = 'manifest.json';
/** Marker written by `seal()`. */
export const SUCCESS_NAME = '_SUCCESS';
/** Marker written by `markLanded()`. */
export const LANDED_NAME = '_LANDED';
/** Marker written by `markAbandoned()`. */
export const ABANDONED_NAME = '_ABANDONED';
/** Digits of a zero-padded slice index. */
export const SLICE_DIGITS = 6;

const SAFE = /^[A-Za-z0-9._-]$/;
const encoder = new TextEncoder();

/** Encode one id as one key segment (bijective; see the module notes). */
export function encodeKeySegment(id: string): string {
  if (id === '.' || id === '..') return id.replaceAll('.', '%2E');
  let out = '';
  for (const ch of id) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of encoder.encode(ch)) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of {@link encodeKeySegment}; `undefined` for a segment it could not have produced. */
export function decodeKeySegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** The ids a run directory is made of. */
export interface RunIds {
  workspaceId: string;
  endpointId: string;
  runId: string;
}

/**
 * Validate and normalise a key prefix: no leading or trailing `/`, portable segments.
 * @throws IngestError `config_invalid`.
 */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  const problem = objectKeyProblem(trimmed);
  if (problem) {
    throw new IngestError('config_invalid', `Invalid staging prefix ${JSON.stringify(prefix)}: ${problem}`, {
      details: { issues: [`prefix: ${problem}`] },
    });
  }
  return trimmed;
}

/**
 * Key of a run directory (no trailing `/`).
 * @throws IngestError `config_invalid` for an empty id.
 */
export function runDirKey(prefix: string, ids: RunIds): string {
  const issues: string[] = [];
  for (const name of ['workspaceId', 'endpointId', 'runId'] as const) {
    if (typeof ids[name] !== 'string' || ids[name].length === 0) issues.push(`${name}: must be a non-empty string`);
  }
  if (issues.length > 0) {
    throw new IngestError('config_invalid', `Cannot place a staging session: ${issues.join('; ')}`, {
      details: { issues },
    });
  }
  return `${prefix}/${encodeKeySegment(ids.workspaceId)}/${encodeKeySegment(ids.endpointId)}/${encodeKeySegment(ids.runId)}`;
}

/** Key of slice `index` in `runDir`, with the codec's extension. */
export function sliceKey(runDir: string, index: number, extension: string): string {
  return `${runDir}/${String(index).padStart(SLICE_DIGITS, '0')}${extension}`;
}

/** The slice index an object name in a run directory stands for, or `undefined` if it is no slice name. */
export function parseSliceName(name: string): number | undefined {
  const m = /^(\d+)(\.[^/]*)?$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Check a codec extension: empty, or dot-separated portable words (`.ndjson`, `.ndjson.gz`, `.arrows`).
 * @throws IngestError `config_invalid`.
 */
export function assertExtension(extension: string, codecId: string): void {
  if (!/^(\.[A-Za-z0-9_-]+)*$/.test(extension)) {
    throw new IngestError(
      'config_invalid',
      `Codec ${JSON.stringify(codecId)} has extension ${JSON.stringify(extension)}: expected '' or dot-separated words like '.ndjson'`,
      { details: { issues: ['codec.extension: not key-safe'] } },
    );
  }
}

/** Split a key below `prefix/` into run ids and the object name, or `undefined` if it is not in a run directory. */
export function parseRunKey(
  prefix: string,
  key: string,
): { runDir: string; ids: RunIds | undefined; name: string } | undefined {
  if (!key.startsWith(`${prefix}/`)) return undefined;
  const parts = key.slice(prefix.length + 1).split('/');
  if (parts.length !== 4) return undefined;
  const [ws, ep, run, name] = parts;
  const workspaceId = decodeKeySegment(ws);
  const endpointId = decodeKeySegment(ep);
  const runId = decodeKeySegment(run);
  const ids =
    workspaceId !== undefined && endpointId !== undefined && runId !== undefined
      ? { workspaceId, endpointId, runId }
      : undefined;
  return { runDir: `${prefix}/${ws}/${ep}/${run}`, ids, name };
}
