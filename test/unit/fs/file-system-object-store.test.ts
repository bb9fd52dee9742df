import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../../src/fs/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'nucleus-fs-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshRoot = () => join(tmp, `root-${++n}`);
const enc = new TextEncoder();

/** Every file and folder under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

async function keys(store: FileSystemObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(prefix)) out.push(info.key);
  return out;
}

describe('FileSystemObjectStore', () => {
  it('stores each object as a plain file at its key, and names the bucket after the root', async () => {
    const root = freshRoot();
    const store = new FileSystemObjectStore({ root });
    expect(store.bucket).toBe(`root-${n}`);
    expect(new FileSystemObjectStore({ root, bucket: 'staging' }).bucket).toBe('staging');
    await store.put('runs/r1/0.ndjson', enc.encode('{"a":1}\n'));
    expect(readFileSync(join(root, 'runs', 'r1', '0.ndjson'), 'utf8')).toBe('{"a":1}\n');
  });

  it('leaves no temp file behind when the body fails or the put is aborted, and keeps the old object', async () => {
    const root = freshRoot();
    const store = new FileSystemObjectStore({ root });
    await store.put('a/obj', enc.encode('old'));
    const failing = async function* () {
      yield enc.encode('partial');
      throw new Error('source broke');
    };
    await expect(store.put('a/obj', failing())).rejects.toMatchObject({ code: 'staging_failed' });
    const controller = new AbortController();
    const aborting = async function* () {
      yield enc.encode('partial');
      controller.abort();
      await new Promise((r) => setTimeout(r, 5));
      yield enc.encode('more');
    };
    await expect(store.put('a/new', aborting(), { signal: controller.signal })).rejects.toMatchObject({
      code: 'aborted',
    });
    expect(tree(join(root, 'a'))).toEqual(['obj']);
    expect(await readAll(await store.get('a/obj'))).toBe('old');
  });

  it('refuses paths through symbolic links inside the root with invalid_key, for every operation', async () => {
    const root = freshRoot();
    const outside = join(tmp, `outside-${n}`);
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'secret'), 'SECRET');
    const store = new FileSystemObjectStore({ root });
    await store.put('real/x', enc.encode('x'));
    symlinkSync(outside, join(root, 'linked'));
    symlinkSync(join(outside, 'secret'), join(root, 'real', 'file-link'));
    for (const key of ['linked/secret', 'linked/new', 'real/file-link']) {
      await expect(store.get(key)).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.head(key)).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.put(key, enc.encode('pwned'))).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.delete([key])).rejects.toMatchObject({ code: 'invalid_key' });
    }
    await expect(keys(store, 'linked/')).rejects.toMatchObject({ code: 'invalid_key' });
    // Links are not objects: listing skips them and never follows them.
    expect(await keys(store)).toEqual(['real/x']);
    expect(readdirSync(outside)).toEqual(['secret']);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('SECRET');
  });

  it('refuses the reserved .nucleus~ names and segments longer than 255 bytes', async () => {
    const store = new FileSystemObjectStore({ root: freshRoot() });
    for (const key of ['.nucleus~meta/x', 'a/.nucleus~tmp~1', `a/${'é'.repeat(128)}`]) {
      await expect(store.put(key, enc.encode('x'))).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.get(key)).rejects.toMatchObject({ code: 'invalid_key' });
    }
    await expect(keys(store, '.nucleus~meta/')).rejects.toMatchObject({ code: 'invalid_key' });
    await store.put(`a/${'é'.repeat(127)}`, enc.encode('fits in 254 bytes'));
  });

  it('refuses an object and a folder of the same name', async () => {
    const store = new FileSystemObjectStore({ root: freshRoot() });
    await store.put('a/b', enc.encode('file'));
    await expect(store.put('a/b/c', enc.encode('x'))).rejects.toMatchObject({ code: 'invalid_key' });
    await expect(store.put('a', enc.encode('x'))).rejects.toMatchObject({ code: 'invalid_key' });
    expect(await keys(store)).toEqual(['a/b']);
    await expect(store.get('a')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('drops metadata that no longer describes the file (replaced behind the store’s back)', async () => {
    const root = freshRoot();
    const store = new FileSystemObjectStore({ root });
    await store.put('m', enc.encode('x'), { contentType: 'text/plain', metadata: { rows: '1' } });
    expect(await store.head('m')).toMatchObject({ contentType: 'text/plain', metadata: { rows: '1' } });
    rmSync(join(root, 'm'));
    writeFileSync(join(root, 'm'), 'replaced by hand');
    expect(await store.head('m')).toMatchObject({ size: 16, contentType: 'application/octet-stream', metadata: {} });
  });

  it('removes folders left empty by delete, and keeps the root', async () => {
    const root = freshRoot();
    const store = new FileSystemObjectStore({ root });
    await store.put('x/y/z/1', enc.encode('1'));
    await store.put('x/keep', enc.encode('k'));
    await store.delete(['x/y/z/1']);
    expect(tree(root).filter((p) => !p.startsWith('.nucleus~'))).toEqual(['x', 'x/keep']);
    await store.delete(['x/keep']);
    expect(existsSync(root)).toBe(true);
    expect(tree(root).filter((p) => !p.startsWith('.nucleus~'))).toEqual([]);
  });

  it('lists every bad option at once with config_invalid', () => {
    expect(() => new FileSystemObjectStore({ root: '', bucket: '', fsync: 'yes' } as never)).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/root.*bucket.*fsync/s) }),
    );
  });

  it('a full disk (real ENOSPC on a 1 MiB tmpfs) is staging_failed and removes the temp file', async () => {
    const root = freshRoot();
    mkdirSync(root, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', root], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`This test needs a real full disk: mounting a 1 MiB tmpfs failed (${(err as Error).message})`);
    }
    try {
      const store = new FileSystemObjectStore({ root });
      await store.put('small', enc.encode('fits'));
      const big = async function* () {
        for (let i = 0; i < 8; i++) yield new Uint8Array(256 * 1024).fill(1);
      };
      const err = await store.put('dir/big', big()).catch((e) => e);
      expect(err).toMatchObject({ code: 'staging_failed', details: { errno: 'ENOSPC' } });
      expect(String(err.message)).toMatch(/no space left/);
      expect(tree(root).filter((p) => p.includes('.nucleus~tmp'))).toEqual([]);
      expect(await keys(store)).toEqual(['small']);
      expect(await readAll(await store.get('small'))).toBe('fits');
    } finally {
      execFileSync('umount', [root]);
    }
  });
});
