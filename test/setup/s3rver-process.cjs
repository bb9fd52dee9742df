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

// s3rver 3.7 answers a PutObject before the object is on disk: it resolves once the body has been handed to the
// file's write stream, not once the stream has finished (for a buffered body it calls end() and resolves at once).
// A GET right after the answer can then read an empty or short file — a store that is not read-after-write
// consistent, unlike S3. This putObject waits for the file to be written and closed.
{
  const crypto = require('node:crypto');
  const { Transform, pipeline } = require('node:stream');
  const store = Object.getPrototypeOf(server.store);
  store.putObject = async function putObject(object) {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
    const md5 = crypto.createHash('md5');
    let size = 0;
    const writeStream = fs.createWriteStream(objectPath);
    if (Buffer.isBuffer(object.content)) {
      md5.update(object.content);
      size = object.content.length;
      await new Promise((resolve, reject) => {
        writeStream.on('error', reject);
        writeStream.end(object.content, resolve);
      });
      await new Promise((resolve) => (writeStream.closed ? resolve() : writeStream.on('close', resolve)));
    } else {
      const tap = new Transform({
        transform(chunk, encoding, callback) {
          md5.update(chunk, encoding);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      await new Promise((resolve, reject) =>
        pipeline(object.content, tap, writeStream, (err) => (err ? reject(err) : resolve())),
      );
    }
    const digest = md5.digest('hex');
    await this.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
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
