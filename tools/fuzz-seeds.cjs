// Writes a small seed corpus for the safetensors fuzzer: realistic headers cut down from the
// fixture files (first tensors, offsets renumbered, zero data) so every seed is a valid file
// of a few KB, plus a few edge cases. Usage: node tools/fuzz-seeds.cjs <out-dir>
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const out = process.argv[2];
if (!out) throw new Error('usage: fuzz-seeds.cjs <out-dir>');
fs.mkdirSync(out, { recursive: true });
const root = path.join(__dirname, '..', 'test', 'fixtures');
const sizes = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function file(header, dataBytes) {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.alloc(dataBytes)]);
}

function* walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.name.endsWith('.safetensors')) yield p;
  }
}

let count = 0;
const write = (name, buf) => {
  fs.writeFileSync(path.join(out, name), buf);
  count++;
};
for (const p of walk(root)) {
  const fd = fs.openSync(p, 'r');
  const lenBuf = Buffer.alloc(8);
  fs.readSync(fd, lenBuf, 0, 8, 0);
  const n = Number(lenBuf.readBigUInt64LE(0));
  const hb = Buffer.alloc(n);
  fs.readSync(fd, hb, 0, n, 8);
  fs.closeSync(fd);
  const header = JSON.parse(hb.toString('utf8'));
  // Keep the metadata and up to 12 tensors, shrinking each to at most 64 elements.
  const small = {};
  if (header.__metadata__) small.__metadata__ = header.__metadata__;
  let offset = 0;
  for (const [name, t] of Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .slice(0, 12)) {
    let shape = t.shape.slice();
    while (shape.reduce((a, b) => a * b, 1) > 64) shape = shape.slice(1);
    const bytes = shape.reduce((a, b) => a * b, 1) * sizes[t.dtype];
    small[name] = { dtype: t.dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  write(`${path.basename(path.dirname(p))}-${path.basename(p, '.safetensors')}.st`, file(small, offset));
}
write('empty-object.st', file({}, 0));
write('scalar.st', file({ s: { dtype: 'F32', shape: [], data_offsets: [0, 4] } }, 4));
write(
  'empty-tensor.st',
  file({ e: { dtype: 'BF16', shape: [0, 3], data_offsets: [0, 0] }, __metadata__: { k: 'v' } }, 0),
);
console.log(`wrote ${count} seeds to ${out}`);
