import { lstat, mkdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { IngestError } from '../errors/ingest-error.js';

/**
 * Names starting with this are the store's own (temp files, the metadata tree): never listed, and refused as key
 * segments so no valid key can collide with them.
 */
export const RESERVED_PREFIX = '.nucleus~';
/** Directory at the root holding metadata sidecars. */
export const META_DIR = `${RESERVED_PREFIX}meta`;
/** Most filesystems limit one name to 255 bytes. */
const MAX_SEGMENT_BYTES = 255;

const encoder = new TextEncoder();

/** Split an already portable key and refuse what this store cannot hold safely (reserved names, long segments). */
export function fsSegments(key: string, what = 'key'): string[] {
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment.startsWith(RESERVED_PREFIX)) {
      throw invalidKey(key, `segments starting with "${RESERVED_PREFIX}" are reserved by FileSystemObjectStore`, what);
    }
    if (encoder.encode(segment).byteLength > MAX_SEGMENT_BYTES) {
      throw invalidKey(key, `a segment is longer than ${MAX_SEGMENT_BYTES} bytes, the filesystem limit`, what);
    }
  }
  return segments;
}

/** `root/segments…`, checked to stay strictly under `root`. */
export function pathUnder(root: string, segments: string[], key: string): string {
  const full = join(root, ...segments);
  if (!full.startsWith(root + sep)) throw invalidKey(key, 'resolves outside the store root');
  return full;
}

/**
 * Walk the directories `segments` below `root` without following links. Returns the directory path, or
 * `undefined` when one does not exist (and `create` is false).
 * @throws IngestError `invalid_key` when a component is a symbolic link or a file.
 */
export async function walkDirs(
  root: string,
  segments: string[],
  key: string,
  create: boolean,
): Promise<string | undefined> {
  let dir = root;
  for (const segment of segments) {
    dir = join(dir, segment);
    let kind = await entryKind(dir);
    if (kind === 'missing') {
      if (!create) return undefined;
      try {
        await mkdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      kind = await entryKind(dir);
    }
    if (kind === 'link') throw invalidKey(key, `path component ${JSON.stringify(segment)} is a symbolic link`);
    if (kind !== 'dir') throw invalidKey(key, `path component ${JSON.stringify(segment)} is an object, not a folder`);
  }
  return dir;
}

/** What is at `path`, without following a link. */
export async function entryKind(path: string): Promise<'missing' | 'link' | 'dir' | 'file' | 'other'> {
  try {
    const st = await lstat(path);
    if (st.isSymbolicLink()) return 'link';
    if (st.isDirectory()) return 'dir';
    if (st.isFile()) return 'file';
    return 'other';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw err;
  }
}

/** `invalid_key` with the key shown (truncated). */
export function invalidKey(key: string, problem: string, what = 'key'): IngestError {
  const shown = JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key);
  return new IngestError('invalid_key', `Invalid object ${what} ${shown}: ${problem}`, { details: { problem } });
}
