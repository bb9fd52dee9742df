// Child process running s3rver for tests and benchmarks (started by test/helpers/s3-server.ts).
// It runs in its own process because s3rver encrypts continuation tokens with DES, which Node 20 only offers
// with --openssl-legacy-provider; the parent passes that flag to this process alone.
//
// s3rver 3.7 implements neither ListMultipartUploads nor AbortMultipartUpload. This file adds both on top of
// s3rver's own upload folders, so tests can prove through the S3 API that no incomplete upload is left behind.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const S3rver = require('s3rver');

const config = JSON.parse(process.env.S3RVER_CONFIG || '{}');
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: config.directory,
  configureBuckets: (config.buckets || []).map((name) => ({ name, configs: [] })),
});

// s3rver 3.7 is not the S3 its clients are written for, in two ways this file corrects:
// - It answers a PutObject before the object is on disk: it resolves once the body has been handed to the file's
//   write stream, not once the stream has finished (for a buffered body it calls end() and resolves at once).
// - It writes an object in place (truncate, then write) and its metadata (content-length) in another file, so a GET
//   racing a PUT of the same key — a manifest rewritten while another slice reads it — can read an empty, short or
//   half-old object, or a content-length that is not the file's.
// S3 replaces an object atomically and is read-after-write consistent. Here every object and metadata file is written
// to a temporary file and renamed into place, and a GET takes the key's metadata and opens the object file under the
// same per-key lock as the PUT's renames, so it sees the old object or the new one, whole.
{
  const crypto = require('node:crypto');
  const { Transform, pipeline } = require('node:stream');
  const store = Object.getPrototypeOf(server.store);
  const locks = new Map();
  /** Run `fn` alone for `key` (a chain of promises per key). */
  const withKey = (key, fn) => {
    const prev = locks.get(key) || Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    locks.set(key, tail);
    tail.then(() => {
      if (locks.get(key) === tail) locks.delete(key);
    });
    return run;
  };
  const tmpOf = (file) => `${file}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  const S3Object = require('s3rver/lib/models/object');
  /** The md5 and metadata files of an object written to temporary files: [temporary, final] pairs to rename. */
  const metadataFiles = async (self, bucket, key, metadata, md5) => {
    const json = {};
    for (const [k, v] of Object.entries(metadata || {})) {
      if (S3Object.ALLOWED_METADATA.includes(k) || k.startsWith('x-amz-meta-')) json[k] = v;
    }
    const pairs = [];
    const put = async (final, data) => {
      const tmp = tmpOf(final);
      await fs.promises.writeFile(tmp, data);
      pairs.push([tmp, final]);
    };
    if (md5) await put(self.getResourcePath(bucket, key, 'object.md5'), md5);
    await put(self.getResourcePath(bucket, key, 'metadata.json'), JSON.stringify(json, null, 2));
    return pairs;
  };
  store.putMetadata = async function putMetadata(bucket, key, metadata, md5) {
    const pairs = await metadataFiles(this, bucket, key, metadata, md5);
    await withKey(this.getResourcePath(bucket, key, 'object'), async () => {
      for (const [from, to] of pairs) await fs.promises.rename(from, to);
    });
  };
  store.putObject = async function putObject(object) {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
    const md5 = crypto.createHash('md5');
    let size = 0;
    const tmp = tmpOf(objectPath);
    if (Buffer.isBuffer(object.content)) {
      md5.update(object.content);
      size = object.content.length;
      await fs.promises.writeFile(tmp, object.content);
    } else {
      const tap = new Transform({
        transform(chunk, encoding, callback) {
          md5.update(chunk, encoding);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      const writeStream = fs.createWriteStream(tmp);
      await new Promise((resolve, reject) =>
        pipeline(object.content, tap, writeStream, (err) => (err ? reject(err) : resolve())),
      );
    }
    const digest = md5.digest('hex');
    const metaTmp = await metadataFiles(this, object.bucket, object.key, object.metadata, digest);
    await withKey(objectPath, async () => {
      await fs.promises.rename(tmp, objectPath);
      for (const [from, to] of metaTmp) await fs.promises.rename(from, to);
    });
    return { size, md5: digest };
  };
  const originalGetObject = store.getObject;
  store.getObject = function getObject(bucket, key, options) {
    return withKey(this.getResourcePath(bucket, key, 'object'), () =>
      originalGetObject.call(this, bucket, key, options),
    );
  };
}

const uploadsDir = (bucket) => server.store.getResourcePath(bucket, undefined, 'uploads');
const xmlEscape = (s) =>
  String(s).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);

server.middleware.unshift(async (ctx, next) => {
  const parts = ctx.path.split('/').filter(Boolean);
  const bucket = parts[0] ? decodeURIComponent(parts[0]) : undefined;
  if (ctx.method === 'GET' && parts.length === 1 && 'uploads' in ctx.query) {
    const dir = uploadsDir(bucket);
    const prefix = ctx.query.prefix || '';
    const uploads = [];
    for (const id of fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []) {
      const keyFile = path.join(dir, id, 'key');
      if (!fs.existsSync(keyFile)) continue;
      const key = fs.readFileSync(keyFile, 'utf8');
      if (key.startsWith(prefix)) uploads.push({ key, id });
    }
    uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    ctx.type = 'application/xml';
    ctx.body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Bucket>${xmlEscape(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>` +
      `<Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>10000</MaxUploads><IsTruncated>false</IsTruncated>` +
      uploads
        .map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${xmlEscape(u.id)}</UploadId></Upload>`)
        .join('') +
      '</ListMultipartUploadsResult>';
    return;
  }
  if (ctx.method === 'DELETE' && parts.length > 1 && typeof ctx.query.uploadId === 'string') {
    const dir = path.join(uploadsDir(bucket), path.basename(ctx.query.uploadId));
    if (!fs.existsSync(dir)) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  return next();
});

server.run().then(
  (address) => process.send({ port: address.port }),
  (err) => {
    process.send({ error: String(err?.stack || err) });
    process.exit(1);
  },
);

// The parent went away (or asked us to stop): close and exit.
process.on('disconnect', () => {
  server.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
