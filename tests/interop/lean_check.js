'use strict';
// The front's --lean URLs against getSignedUrl's: for each key (odd
// characters, Unicode, deep paths) and each kind of PUT, both signed at
// one instant must be the same string. Prints one line per case that
// differs and "N same, N differ"; exits 1 if any differs.
//
//   node lean_check.js

const { S3Client, PutObjectCommand, UploadPartCommand } = require('@aws-sdk/client-s3');
const { getSignedUrl } = require('@aws-sdk/s3-request-presigner');
const { LeanS3, BUCKET } = require('./front.js');

const KEYS = [
  'a.pdf',
  'lab/report 1.pdf',
  "x/ü(1)!*~'.txt",
  'deep/er/and/deeper/name-with_all.kinds~of.chars',
  'space at end ',
  'per%cent+plus&amp=eq?q#hash',
  '日本語/レポート.pdf',
  'emoji 🩺.bin',
  'semi;colon,comma:colon@at$dollar',
];

async function main() {
  const endpoint = 'http://127.0.0.1:9';
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const lean = new LeanS3(endpoint, client.config, '/nonexistent');
  const opts = { expiresIn: 900, signingDate: new Date('2026-12-06T12:34:56Z') };
  let same = 0;
  let differ = 0;
  for (const Key of KEYS) {
    const commands = [
      new PutObjectCommand({ Bucket: BUCKET, Key, ContentType: 'application/pdf' }),
      new UploadPartCommand({ Bucket: BUCKET, Key, UploadId: 'b3f+/=id', PartNumber: 7 }),
    ];
    for (const command of commands) {
      const want = await getSignedUrl(client, command, { ...opts });
      const got = await lean.url(command, { ...opts });
      if (got === want) same++;
      else {
        differ++;
        process.stdout.write(`differ: ${command.constructor.name} ${JSON.stringify(Key)}\n  sdk:  ${want}\n  lean: ${got}\n`);
      }
    }
  }
  process.stdout.write(`${same} same, ${differ} differ\n`);
  process.exit(differ ? 1 : 0);
}

main().catch(err => {
  process.stderr.write(`lean_check: ${err.stack}\n`);
  process.exit(2);
});
