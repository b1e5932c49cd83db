'use strict';
// An Upload API front (SPEC 1.1) on s3rver, for healsync's interop test.
//
// The API half is ours: JSON, X-API-Key, the SPEC's error shapes, upload
// sessions in memory. Everything about the bytes is S3's: the storage is
// s3rver (an S3 implementation from the npm registry), every URL healsync
// PUTs to is presigned by the AWS SDK for JavaScript v3, and a file counts
// as stored only after CompleteMultipartUpload (or PutObject) and a SHA-256
// of the object read back through GetObject.
//
//   node front.js --dir DIR --api-key KEY [--url-ttl SECONDS] [--no-verify]
//                 [--lean] [--storage-process]
//
// prints one JSON line {"api": ..., "storage": ..., "admin": ...,
// "storage_pid": ...} once all three listen on loopback. The other
// switches are for benchmarks, where the front's own work would be
// billed to the client measured:
//   --no-verify        complete an upload once the storage holds an object
//                      of the declared size (HeadObject), without reading
//                      it back for its SHA-256
//   --lean             sign URLs and check sizes without the SDK client's
//                      per-call machinery (see LeanS3)
//   --storage-process  run s3rver in a child process (its pid printed), as
//                      the storage is another host in the field, so that
//                      the API and the storage do not share one thread
// The admin half (/_admin/..., on a port of its own so that the counts
// of the API's connections and requests are the clients' alone) lets the
// test look at what the storage holds and turn knobs:
//   GET  /_admin/uploads           sessions, with the parts the storage holds
//   GET  /_admin/objects           objects in the bucket (ListObjectsV2)
//   GET  /_admin/object?key=K      an object's bytes (GetObject)
//   GET  /_admin/stats             requests the storage answered, by kind
//                                  (own_storage: those the front made);
//                                  API requests; connections per port
//   POST /_admin/knobs             {"url_ttl": s, "stale_urls": n,
//                                   "stale_expires_at": "past"|"future"}
// stale_urls: the next n URLs are signed as if minted url_ttl + 60 s ago,
// so the storage refuses them as expired (S3's 403 AccessDenied, XML).
// Their expires_at says so ("past", the default), or, with "future",
// says they have url_ttl left: the storage's clock ahead of the API's,
// which only the storage's 403 reveals.
//
// s3rver 3.7.1 implements neither ListParts nor AbortMultipartUpload (it
// answers 405 MethodNotAllowed, or 404 NoSuchKey while the key holds
// no object yet). The front asks anyway and, on that
// answer, reads the parts from s3rver's own store: a part counts once
// s3rver has written its ".md5" beside it, which it does only after the
// whole body arrived.
//
// Headers: URLs are presigned with SigV4 query authentication. healsync adds
// x-checksum-crc32 to part PUTs; it is not an x-amz-* header, so S3 accepts
// it unsigned (and s3rver does not check V4 signatures at all).

const { fork } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const {
  S3Client,
  PutObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
  ListPartsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
} = require('@aws-sdk/client-s3');
const { getSignedUrl, S3RequestPresigner } = require('@aws-sdk/s3-request-presigner');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

const BUCKET = 'healsync';
const PREFIX = '/ext-api/v1';
const MIB = 1024 * 1024;
const MIN_PART = 5 * MIB;
const MAX_PART = 5 * 1024 * MIB;
const MAX_PARTS = 10000;
const MAX_BODY = 1 << 20;
const OWN_HEADER = 'x-healsync-front';

function parseArgs(argv) {
  const opts = { dir: null, apiKey: null, urlTtl: 900, verify: true, storageProcess: false, lean: false };
  const flags = { '--no-verify': ['verify', false], '--storage-process': ['storageProcess', true], '--lean': ['lean', true] };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k in flags) {
      opts[flags[k][0]] = flags[k][1];
      i--;
      continue;
    }
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--dir') opts.dir = v;
    else if (k === '--api-key') opts.apiKey = v;
    else if (k === '--url-ttl') opts.urlTtl = Number(v);
    else throw new Error(`unknown option ${k}`);
  }
  if (!opts.dir || !opts.apiKey) throw new Error('--dir and --api-key are required');
  if (!Number.isInteger(opts.urlTtl) || opts.urlTtl < 1) throw new Error('--url-ttl must be >= 1');
  return opts;
}

class ApiError extends Error {
  constructor(status, type, message, details) {
    super(message);
    this.status = status;
    this.type = type;
    this.details = details;
  }
}

function invalid(field, why) {
  return new ApiError(400, 'validation_error', `${field}: ${why}`, { [field]: why });
}

// The body's fields: exactly the known ones, each checked.
function fields(body, checks) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'validation_error', 'the body must be a JSON object', { body: 'not an object' });
  }
  for (const k of Object.keys(body)) if (!(k in checks)) throw invalid(k, 'unknown field');
  const out = {};
  for (const [k, check] of Object.entries(checks)) {
    if (!(k in body)) throw invalid(k, 'is required');
    const why = check(body[k]);
    if (why) throw invalid(k, why);
    out[k] = body[k];
  }
  return out;
}

const isString = v => (typeof v === 'string' && v.length > 0 && v.length <= 1024 ? null : 'must be a non-empty string');
const isSize = v => (Number.isSafeInteger(v) && v >= 0 ? null : 'must be a non-negative integer');
const isSha = v => (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? null : 'must be 64 lowercase hex digits');
const isName = v => {
  if (isString(v)) return isString(v);
  if (v.split('/').some(s => s === '' || s === '.' || s === '..')) return 'must be a relative path without empty, . or .. segments';
  return /[\x00-\x1f\x7f]/.test(v) ? 'must not hold control characters' : null;
};
const isNumbers = v =>
  Array.isArray(v) && v.length >= 1 && v.length <= 100 && v.every(n => Number.isInteger(n))
    ? null
    : 'must be a list of 1 to 100 part numbers';
const isPartList = v =>
  Array.isArray(v) &&
  v.length >= 1 &&
  v.every(p => p && typeof p === 'object' && Number.isInteger(p.part_number) && typeof p.etag === 'string' && Object.keys(p).length === 2)
    ? null
    : 'must be a list of {part_number, etag}';

const SINGLE = { filename: isName, size_bytes: isSize, sha256: isSha, content_type: isString };
const MULTI = { ...SINGLE, part_size_bytes: isSize };

function rfc3339(ms) {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

async function readBody(req) {
  const chunks = [];
  let n = 0;
  for await (const c of req) {
    n += c.length;
    if (n > MAX_BODY) throw new ApiError(413, 'payload_too_large', 'the body is too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function send(res, status, body) {
  if (status === 204) {
    res.writeHead(204);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function s3Status(err) {
  return (err && err.$metadata && err.$metadata.httpStatusCode) || 0;
}

// s3rver's answers to a request it does not implement: 405 or 501, and for
// ListParts on a key that has no object yet, 404 NoSuchKey.
function notImplemented(err) {
  return [405, 501].includes(s3Status(err)) || err.name === 'NoSuchKey';
}

// The storage: s3rver behind a wrapper that counts what it answered.
class Storage {
  constructor(dir) {
    this.dir = dir;
    this.pid = process.pid;
    this.stats = { storage: {}, own_storage: {}, part_puts: {}, connections: { storage: 0, own_storage: 0 } };
  }

  async start() {
    this.s3rver = new S3rver({
      directory: this.dir,
      silent: true,
      vhostBuckets: false,
      configureBuckets: [{ name: BUCKET }],
    });
    await this.s3rver.configureBuckets();
    const s3app = this.s3rver.callback();
    this.server = http.createServer((req, res) => {
      this.count(req, res);
      s3app(req, res);
    });
    await new Promise((ok, fail) => this.server.listen(0, '127.0.0.1', ok).on('error', fail));
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  async counts() {
    return this.stats;
  }

  // What the storage answered, by kind: "PUT part 200", "PUT object 403"...
  // The front's own requests (and connections) are also counted apart,
  // in own_storage, for benchmarks that want the clients' alone. A
  // connection is counted at its first request, which says whose it is.
  count(req, res) {
    const url = new URL(req.url, 'http://x');
    const own = req.headers[OWN_HEADER] === '1';
    if (!req.socket.hsCounted) {
      req.socket.hsCounted = true;
      this.stats.connections[own ? 'own_storage' : 'storage']++;
    }
    const kind = url.searchParams.has('partNumber') ? 'part' : url.searchParams.has('uploadId') ? 'upload' : 'object';
    res.on('finish', () => {
      const k = `${req.method} ${kind} ${res.statusCode}`;
      this.stats.storage[k] = (this.stats.storage[k] || 0) + 1;
      if (own) this.stats.own_storage[k] = (this.stats.own_storage[k] || 0) + 1;
      if (kind === 'part' && req.method === 'PUT' && res.statusCode === 200) {
        const id = url.searchParams.get('uploadId');
        const n = url.searchParams.get('partNumber');
        const per = (this.stats.part_puts[id] = this.stats.part_puts[id] || {});
        per[n] = (per[n] || 0) + 1;
      }
    });
  }
}

// The storage in a child process of its own (--storage-process), as it is
// another host in the field: the API's work and the storage's then do not
// share one JavaScript thread. Counts come back over the IPC channel; the
// child ends with its parent.
class ChildStorage {
  constructor(dir) {
    this.dir = dir;
    this.asked = new Map();
    this.seq = 0;
  }

  start() {
    this.child = fork(__filename, ['--storage-child', this.dir], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.pid = this.child.pid;
    return new Promise((ok, fail) => {
      this.child.once('exit', code => {
        const err = new Error(`the storage process exited with ${code}`);
        process.stderr.write(`front: ${err.message}\n`);
        this.exited = err;
        for (const [, asked] of this.asked) asked.fail(err); // no answer will come
        this.asked.clear();
        fail(err);
      });
      this.child.on('message', m => {
        if (m.url) ok(m.url);
        const asked = this.asked.get(m.seq);
        if (asked) {
          this.asked.delete(m.seq);
          asked.ok(m.stats);
        }
      });
    });
  }

  counts() {
    if (this.exited) return Promise.reject(this.exited);
    const seq = ++this.seq;
    return new Promise((ok, fail) => {
      this.asked.set(seq, { ok, fail });
      this.child.send({ seq });
    });
  }
}

async function storageChild(dir) {
  const store = new Storage(dir);
  const url = await store.start();
  process.on('message', m => process.send({ seq: m.seq, stats: store.stats }));
  process.on('disconnect', () => process.exit(0));
  process.send({ url });
}

// S3's URI encoding of a key's segments (RFC 3986 unreserved kept; the
// SDK's serializer does the same).
function s3Escape(str) {
  return encodeURIComponent(str).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// The front's own S3 work for benchmarks (--lean): URLs signed by one
// S3RequestPresigner, built once, on requests built here, and the size
// check of --no-verify made on s3rver's store instead of by HeadObject.
// getSignedUrl builds and resolves the client's whole middleware stack
// for every URL, and each HeadObject does the same and is one more
// request for the storage's one thread: together half the server's CPU
// per small file, billed to the client a benchmark measures. The URLs
// are the same bytes (tests/interop/lean_check.js compares them with
// getSignedUrl's).
class LeanS3 {
  constructor(endpoint, config, storeDir) {
    const u = new URL(endpoint);
    this.hostname = u.hostname;
    this.port = Number(u.port);
    this.presigner = new S3RequestPresigner({ ...config, signingName: 's3', region: async () => 'us-east-1' });
    this.store = new FilesystemStore(storeDir);
  }

  // A presigned PUT URL for command (PutObject or UploadPart): only its
  // Key, UploadId and PartNumber are read, as S3 signs no more of it.
  async url(command, opts) {
    const { Key, UploadId, PartNumber } = command.input;
    const query = { 'x-id': command.constructor.name.replace(/Command$/, '') };
    if (PartNumber !== undefined) query.partNumber = String(PartNumber);
    if (UploadId !== undefined) query.uploadId = UploadId;
    const req = {
      method: 'PUT',
      protocol: 'http:',
      hostname: this.hostname,
      port: this.port,
      path: `/${BUCKET}/${Key.split('/').map(s3Escape).join('/')}`,
      query,
      headers: {},
    };
    const out = await this.presigner.presign(req, opts);
    const q = Object.keys(out.query)
      .sort()
      .map(k => `${s3Escape(k)}=${s3Escape(out.query[k])}`)
      .join('&');
    return `http://${this.hostname}:${this.port}${out.path}?${q}`;
  }

  // The size of the object s3rver stored for key, read from its store
  // (s3rver's own FilesystemStore names the file), or an error with the
  // 404 a HeadObject would have answered.
  async size(key) {
    try {
      return (await fs.promises.stat(this.store.getResourcePath(BUCKET, key, 'object'))).size;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
      throw Object.assign(new Error('no such object'), { $metadata: { httpStatusCode: 404 } });
    }
  }
}

class Front {
  constructor(opts) {
    this.opts = opts;
    this.urlTtl = opts.urlTtl;
    this.staleUrls = 0;
    this.staleExpiresAt = 'past';
    this.uploads = new Map(); // upl_... -> session
    this.stats = { api_requests: 0, api_connections: 0, presigned: 0, stale_presigned: 0, completes: 0 };
    this.storeDir = path.join(opts.dir, 's3rver');
    fs.mkdirSync(this.storeDir, { recursive: true });
  }

  // What both halves counted, in the shape /_admin/stats has always had.
  async allStats() {
    const st = await this.store.counts();
    const { api_connections, ...own } = this.stats;
    return {
      ...own,
      storage: st.storage,
      own_storage: st.own_storage,
      part_puts: st.part_puts,
      connections: { api: api_connections, ...st.connections },
    };
  }

  async start() {
    this.store = this.opts.storageProcess ? new ChildStorage(this.storeDir) : new Storage(this.storeDir);
    this.storageUrl = await this.store.start();
    const s3opts = {
      endpoint: this.storageUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      // Presigned PUTs carry no SDK checksum parameters: healsync sends
      // the body and the headers the API names, nothing else.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    // Two clients: the front's own calls carry OWN_HEADER, so that the
    // storage's counts can tell them from the clients'; URLs are signed
    // by a client without it, as the header would be signed into them.
    this.signer = new S3Client(s3opts);
    this.lean = this.opts.lean ? new LeanS3(this.storageUrl, this.signer.config, this.storeDir) : null;
    this.s3 = new S3Client(s3opts);
    this.s3.middlewareStack.add(
      next => args => {
        args.request.headers[OWN_HEADER] = '1';
        return next(args);
      },
      { step: 'build', name: 'healsyncFrontOwn' },
    );
    this.api = http.createServer((req, res) => this.handle(req, res, false));
    this.api.on('connection', () => this.stats.api_connections++);
    await new Promise((ok, fail) => this.api.listen(0, '127.0.0.1', ok).on('error', fail));
    this.adminServer = http.createServer((req, res) => this.handle(req, res, true));
    await new Promise((ok, fail) => this.adminServer.listen(0, '127.0.0.1', ok).on('error', fail));
    const port = this.api.address().port;
    const adminPort = this.adminServer.address().port;
    return {
      api: `http://127.0.0.1:${port}${PREFIX}`,
      admin: `http://127.0.0.1:${adminPort}/_admin`,
      storage: this.storageUrl,
      storage_pid: this.store.pid,
    };
  }

  async presign(command) {
    const opts = { expiresIn: this.urlTtl };
    this.stats.presigned++;
    const now = Date.now();
    let minted = now;
    if (this.staleUrls > 0) {
      this.staleUrls--;
      this.stats.stale_presigned++;
      minted -= (this.urlTtl + 60) * 1000;
      opts.signingDate = new Date(minted);
    }
    const url = this.lean
      ? await this.lean.url(command, opts)
      : await getSignedUrl(this.signer, command, opts);
    // "future": expires_at from the API's clock, the storage's clock ahead.
    const from = this.staleExpiresAt === 'future' ? now : minted;
    return { url, expires_at: rfc3339(from + this.urlTtl * 1000) };
  }

  session(id, kind) {
    const s = this.uploads.get(id);
    if (!s || s.kind !== kind || s.state === 'aborted') {
      throw new ApiError(404, 'upload_not_found', 'no such upload session; start over');
    }
    return s;
  }

  // The parts the storage holds: ListParts, or s3rver's store where it
  // does not implement ListParts.
  async storedParts(s) {
    try {
      const out = await this.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: s.key, UploadId: s.s3id }));
      return (out.Parts || []).map(p => ({ part_number: p.PartNumber, etag: p.ETag, size_bytes: p.Size }));
    } catch (err) {
      if (err.name === 'NoSuchUpload') throw new ApiError(404, 'upload_not_found', 'the storage no longer knows this upload');
      if (!notImplemented(err)) throw err;
    }
    const dir = path.join(this.storeDir, BUCKET, '._S3rver_uploads', s.s3id);
    let names;
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      if (err.code === 'ENOENT') return [];
      throw err;
    }
    const parts = [];
    for (const name of names) {
      if (!/^[0-9]+\.md5$/.test(name)) continue;
      const n = Number(name.slice(0, -4));
      const md5 = fs.readFileSync(path.join(dir, name), 'utf8').trim();
      const size = fs.statSync(path.join(dir, String(n))).size;
      parts.push({ part_number: n, etag: `"${md5}"`, size_bytes: size });
    }
    return parts.sort((a, b) => a.part_number - b.part_number);
  }

  // The object's SHA-256 and size as read back from the storage.
  async objectDigest(key) {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const h = crypto.createHash('sha256');
    let size = 0;
    for await (const c of out.Body) {
      h.update(c);
      size += c.length;
    }
    return { sha256: h.digest('hex'), size };
  }

  // The object's size as the storage answers a HeadObject, its SHA-256
  // taken to be the declared one (--no-verify).
  async objectSize(key, sha256) {
    if (this.lean) return { sha256, size: await this.lean.size(key) };
    const out = await this.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    return { sha256, size: out.ContentLength };
  }

  async verify(s) {
    let got;
    try {
      got = this.opts.verify ? await this.objectDigest(s.key) : await this.objectSize(s.key, s.sha256);
    } catch (err) {
      if (s3Status(err) === 404) {
        throw new ApiError(409, 'checksum_mismatch', 'no object is stored for this upload; upload again');
      }
      throw err;
    }
    if (got.size !== s.size_bytes || got.sha256 !== s.sha256) {
      await this.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: s.key }));
      const what = got.size !== s.size_bytes ? 'size' : 'SHA-256';
      throw new ApiError(409, 'checksum_mismatch', `stored bytes do not match the declared ${what}; upload again`);
    }
    this.stats.completes++;
    s.state = 'completed';
    s.result = { file_id: `file_${s.id.slice(4)}`, size_bytes: s.size_bytes, sha256: s.sha256, status: 'stored' };
    return s.result;
  }

  newSession(kind, f, extra = {}) {
    const id = `upl_${crypto.randomBytes(12).toString('hex')}`;
    const s = {
      id,
      kind,
      key: f.filename,
      filename: f.filename,
      size_bytes: f.size_bytes,
      sha256: f.sha256,
      content_type: f.content_type,
      state: 'open',
      expires_at: rfc3339(Date.now() + 24 * 3600 * 1000),
      ...extra,
    };
    this.uploads.set(id, s);
    return s;
  }

  async route(method, p, body) {
    const json = () => {
      try {
        return JSON.parse(body.toString('utf8') || 'null');
      } catch {
        throw new ApiError(400, 'validation_error', 'the body is not JSON', { body: 'not JSON' });
      }
    };
    let m;
    if (method === 'POST' && p === '/uploads') {
      const f = fields(json(), SINGLE);
      if (f.size_bytes > MAX_PART) throw invalid('size_bytes', 'too large for one PUT; use a multipart upload');
      const s = this.newSession('single', f);
      const headers = { 'Content-Type': f.content_type };
      const { url, expires_at } = await this.presign(
        new PutObjectCommand({ Bucket: BUCKET, Key: s.key, ContentType: f.content_type }),
      );
      return [201, { data: { upload_id: s.id, method: 'PUT', url, headers, expires_at } }];
    }
    if (method === 'POST' && (m = p.match(/^\/uploads\/([^/]+)\/complete$/)) && m[1] !== 'multipart') {
      fields(json(), {});
      const s = this.uploads.get(m[1]);
      if (s && s.kind === 'single' && s.state === 'completed') return [200, { data: s.result }];
      return [200, { data: await this.verify(this.session(m[1], 'single')) }];
    }
    if (method === 'POST' && p === '/uploads/multipart') {
      const f = fields(json(), MULTI);
      if (f.size_bytes < 1) throw invalid('size_bytes', 'must be at least 1 for a multipart upload');
      let part = Math.min(Math.max(f.part_size_bytes, MIN_PART), MAX_PART);
      if (Math.ceil(f.size_bytes / part) > MAX_PARTS) part = Math.ceil(f.size_bytes / MAX_PARTS);
      if (part > MAX_PART) throw invalid('size_bytes', 'too large for 10,000 parts of 5 GiB');
      const out = await this.s3.send(
        new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: f.filename, ContentType: f.content_type }),
      );
      const s = this.newSession('multipart', f, {
        s3id: out.UploadId,
        part_size_bytes: part,
        part_count: Math.ceil(f.size_bytes / part),
      });
      return [201, { data: { upload_id: s.id, part_size_bytes: part, part_count: s.part_count, expires_at: s.expires_at } }];
    }
    if ((m = p.match(/^\/uploads\/multipart\/([^/]+)\/parts$/))) {
      if (method === 'GET') {
        const s = this.session(m[1], 'multipart');
        return [200, { data: { parts: s.state === 'completed' ? [] : await this.storedParts(s) } }];
      }
      if (method === 'POST') {
        const f = fields(json(), { part_numbers: isNumbers });
        const s = this.session(m[1], 'multipart');
        const bad = f.part_numbers.find(n => n < 1 || n > s.part_count);
        if (bad !== undefined) throw invalid('part_numbers', `must be within 1..${s.part_count}; ${bad} is not`);
        const parts = [];
        for (const n of f.part_numbers) {
          const { url, expires_at } = await this.presign(
            new UploadPartCommand({ Bucket: BUCKET, Key: s.key, UploadId: s.s3id, PartNumber: n }),
          );
          parts.push({ part_number: n, url, headers: {}, expires_at });
        }
        return [200, { data: { parts } }];
      }
    }
    if (method === 'POST' && (m = p.match(/^\/uploads\/multipart\/([^/]+)\/complete$/))) {
      const f = fields(json(), { parts: isPartList });
      const done = this.uploads.get(m[1]);
      if (done && done.kind === 'multipart' && done.state === 'completed') return [200, { data: done.result }];
      const s = this.session(m[1], 'multipart');
      if (f.parts.length !== s.part_count) throw invalid('parts', `expected all ${s.part_count} parts, got ${f.parts.length}`);
      f.parts.forEach((e, i) => {
        if (e.part_number !== i + 1) throw invalid('parts', 'parts must be listed in ascending order');
      });
      try {
        await this.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: BUCKET,
            Key: s.key,
            UploadId: s.s3id,
            MultipartUpload: { Parts: f.parts.map(e => ({ PartNumber: e.part_number, ETag: e.etag })) },
          }),
        );
      } catch (err) {
        const status = s3Status(err);
        if (status === 400) throw invalid('parts', `the storage refused the part list: ${err.name}`);
        if (status === 404) throw new ApiError(404, 'upload_not_found', 'the storage no longer knows this upload');
        throw err;
      }
      return [200, { data: await this.verify(s) }];
    }
    if (method === 'DELETE' && (m = p.match(/^\/uploads\/multipart\/([^/]+)$/))) {
      const s = this.session(m[1], 'multipart');
      try {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: s.key, UploadId: s.s3id }));
      } catch (err) {
        if (!notImplemented(err)) throw err;
        fs.rmSync(path.join(this.storeDir, BUCKET, '._S3rver_uploads', s.s3id), { recursive: true, force: true });
      }
      s.state = 'aborted';
      return [204, null];
    }
    throw new ApiError(404, 'not_found', `no route for ${method} ${p}`);
  }

  async admin(method, p, url, body) {
    if (method === 'GET' && p === '/uploads') {
      const out = [];
      for (const s of this.uploads.values()) {
        const parts = s.kind === 'multipart' && s.state === 'open' ? await this.storedParts(s) : [];
        out.push({ ...s, stored_parts: parts });
      }
      return [200, out];
    }
    if (method === 'GET' && p === '/objects') {
      const out = await this.s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      return [200, (out.Contents || []).map(o => ({ key: o.Key, size: o.Size, etag: o.ETag }))];
    }
    if (method === 'GET' && p === '/stats') return [200, { ...(await this.allStats()), url_ttl: this.urlTtl, stale_urls: this.staleUrls }];
    if (method === 'POST' && p === '/knobs') {
      const k = JSON.parse(body.toString('utf8'));
      if (k.url_ttl !== undefined) this.urlTtl = k.url_ttl;
      if (k.stale_urls !== undefined) this.staleUrls = k.stale_urls;
      if (k.stale_expires_at !== undefined) this.staleExpiresAt = k.stale_expires_at;
      return [200, { url_ttl: this.urlTtl, stale_urls: this.staleUrls, stale_expires_at: this.staleExpiresAt }];
    }
    throw new ApiError(404, 'not_found', `no admin route ${method} ${p}`);
  }

  async handle(req, res, admin) {
    const url = new URL(req.url, 'http://x');
    try {
      const body = await readBody(req);
      if (!admin) this.stats.api_requests++;
      if (admin !== url.pathname.startsWith('/_admin/')) throw new ApiError(404, 'not_found', 'not on this port');
      if (url.pathname === '/_admin/object' && req.method === 'GET') {
        const out = await this.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: url.searchParams.get('key') }));
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': out.ContentLength });
        for await (const c of out.Body) res.write(c);
        res.end();
        return;
      }
      if (url.pathname.startsWith('/_admin/')) {
        const [status, out] = await this.admin(req.method, url.pathname.slice(7), url, body);
        send(res, status, out);
        return;
      }
      if (!url.pathname.startsWith(PREFIX + '/')) throw new ApiError(404, 'not_found', 'not under ' + PREFIX);
      if (req.headers['x-api-key'] !== this.opts.apiKey) {
        throw new ApiError(401, 'unauthorized', 'missing or wrong X-API-Key');
      }
      if (req.method === 'POST' && !/^application\/json\b/.test(req.headers['content-type'] || '')) {
        throw new ApiError(415, 'unsupported_media_type', 'Content-Type must be application/json');
      }
      const [status, out] = await this.route(req.method, url.pathname.slice(PREFIX.length), body);
      send(res, status, out);
    } catch (err) {
      if (err instanceof ApiError) {
        const out = { error: err.type, message: err.message };
        if (err.status === 400 && err.details) out.details = err.details;
        send(res, err.status, out);
      } else {
        process.stderr.write(`front: ${req.method} ${url.pathname}: ${err.name}: ${err.message}\n`);
        if (!res.headersSent) send(res, 500, { error: 'internal', message: 'the storage failed: ' + err.name });
        else res.destroy();
      }
    }
  }
}

async function main() {
  if (process.argv[2] === '--storage-child') return storageChild(process.argv[3]);
  const front = new Front(parseArgs(process.argv.slice(2)));
  const where = await front.start();
  process.stdout.write(JSON.stringify(where) + '\n');
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) {
  main().catch(err => {
    process.stderr.write(`front: ${err.message}\n`);
    process.exit(1);
  });
}

module.exports = { LeanS3, BUCKET };
