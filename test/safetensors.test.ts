// The native safetensors reader seen from JS: every malformed file is a DiffusionError with the
// right code and a message naming the file (and the tensor), never a crash; fixtures parse.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import test from 'ava';
import { DiffusionError, type ErrorCode } from '../lib/errors.js';
import { readSafetensorsHeader } from '../lib/loading/safetensors.js';
import { fixturesDir, readSafetensors } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'nd-safetensors-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** A file with an explicit 8-byte length field, header text and data section. */
function rawFile(name: string, header: string | Buffer, data: Buffer = Buffer.alloc(0), length?: bigint): string {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(length ?? BigInt(h.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, h, data]));
  return path;
}

/** A file whose header is the JSON text given (kept verbatim, so duplicate keys survive). */
function headerFile(name: string, json: string, dataBytes: number): string {
  return rawFile(name, json, Buffer.alloc(dataBytes));
}

function rejects(t: import('ava').ExecutionContext, path: string, code: ErrorCode, ...fragments: string[]): void {
  const err = t.throws(() => readSafetensorsHeader(path), { instanceOf: DiffusionError });
  if (!err) return;
  t.is((err as DiffusionError).code, code, err.message);
  t.true(err.message.includes(path), `message should name the file: ${err.message}`);
  for (const f of fragments)
    t.true(err.message.includes(f), `message should include ${JSON.stringify(f)}: ${err.message}`);
}

const ok = (name: string, extra = ''): string =>
  `"${name}":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}${extra}`;

test('a well-formed file parses with dtype, shape, offsets and metadata', (t) => {
  const path = headerFile(
    'good.safetensors',
    `{"__metadata__":{"format":"pt"},${ok('a')},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},"e":{"dtype":"BF16","shape":[0,4],"data_offsets":[22,22]}}`,
    22,
  );
  const h = readSafetensorsHeader(path);
  t.is(h.path, path);
  t.is(h.fileSize, statSync(path).size);
  t.is(h.headerBytes, h.fileSize - 8 - 22);
  t.deepEqual(h.metadata, { format: 'pt' });
  t.deepEqual(h.tensors, [
    { name: 'a', dtype: 'F32', shape: [2, 2], dataOffsets: [0, 16] },
    { name: 'b', dtype: 'F16', shape: [3], dataOffsets: [16, 22] },
    { name: 'e', dtype: 'BF16', shape: [0, 4], dataOffsets: [22, 22] },
  ]);
});

test('a scalar (shape []) is one element', (t) => {
  const path = headerFile('scalar.safetensors', '{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}', 8);
  t.deepEqual(readSafetensorsHeader(path).tensors[0].shape, []);
});

test('missing file, directory and empty path are ERR_IO / ERR_INVALID_ARGUMENT', (t) => {
  rejects(t, join(dir, 'does-not-exist.safetensors'), 'ERR_IO', 'No such file');
  const sub = join(dir, 'a-directory.safetensors');
  mkdirSync(sub);
  rejects(t, sub, 'ERR_IO', 'directory');
  const err = t.throws(() => readSafetensorsHeader(''), { instanceOf: DiffusionError });
  t.is((err as DiffusionError).code, 'ERR_INVALID_ARGUMENT');
});

test('empty and truncated files', (t) => {
  const empty = join(dir, 'empty.safetensors');
  writeFileSync(empty, Buffer.alloc(0));
  rejects(t, empty, 'ERR_INVALID_FILE', 'at least 8 bytes', 'received 0');
  const five = join(dir, 'five.safetensors');
  writeFileSync(five, Buffer.from([1, 2, 3, 4, 5]));
  rejects(t, five, 'ERR_INVALID_FILE', 'received 5');
  // A good file cut inside its data section: the tensor whose bytes are missing is named.
  const good = readFileSync(headerFile('whole.safetensors', `{${ok('w')}}`, 16));
  const cut = join(dir, 'cut-data.safetensors');
  writeFileSync(cut, good.subarray(0, good.length - 3));
  rejects(t, cut, 'ERR_INVALID_FILE', 'tensor "w"', 'truncated');
  const cutHeader = join(dir, 'cut-header.safetensors');
  writeFileSync(cutHeader, good.subarray(0, 20));
  rejects(t, cutHeader, 'ERR_INVALID_FILE', 'truncated');
});

test('header length: huge (2^63), past the end, too small', (t) => {
  rejects(
    t,
    rawFile('huge.safetensors', '{}', Buffer.alloc(0), 1n << 63n),
    'ERR_INVALID_FILE',
    'header length',
    '9223372036854775808',
  );
  rejects(t, rawFile('max.safetensors', '{}', Buffer.alloc(0), (1n << 64n) - 1n), 'ERR_INVALID_FILE', 'header length');
  rejects(t, rawFile('past.safetensors', '{}', Buffer.alloc(0), 1000n), 'ERR_INVALID_FILE', '1000 bytes');
  rejects(t, rawFile('zero.safetensors', '', Buffer.alloc(0), 0n), 'ERR_INVALID_FILE', 'JSON object');
});

test('the header must be a JSON object', (t) => {
  rejects(t, rawFile('notjson.safetensors', 'hello world'), 'ERR_INVALID_FILE', 'JSON');
  rejects(t, rawFile('array.safetensors', '[1, 2, 3]'), 'ERR_INVALID_FILE', 'JSON object');
  rejects(t, rawFile('string.safetensors', '"abc"'), 'ERR_INVALID_FILE', 'JSON object');
  rejects(t, rawFile('trailing.safetensors', '{} x'), 'ERR_INVALID_FILE', 'trailing');
  rejects(t, rawFile('unterminated.safetensors', '{"a": "b'), 'ERR_INVALID_FILE', 'unterminated');
  rejects(t, rawFile('binary.safetensors', Buffer.from([0x7b, 0x00, 0xff, 0x7d])), 'ERR_INVALID_FILE', 'JSON');
  rejects(
    t,
    rawFile('leading-zero.safetensors', '{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}', Buffer.alloc(4)),
    'ERR_INVALID_FILE',
    'leading zero',
  );
  rejects(t, rawFile('lone-surrogate.safetensors', '{"\\ud800":1}'), 'ERR_INVALID_FILE', 'surrogate');
});

test('deeply nested JSON is refused without exhausting the stack', (t) => {
  for (const depth of [65, 100_000]) {
    const path = rawFile(`deep-${depth}.safetensors`, `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    rejects(t, path, 'ERR_INVALID_FILE', 'nesting');
  }
  const fine = `{"__metadata__":{},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":${'['.repeat(60)}${']'.repeat(60)}}}`;
  t.is(readSafetensorsHeader(rawFile('deep-ok.safetensors', fine, Buffer.alloc(4))).tensors.length, 1);
});

test('a header of millions of values is refused (memory bound)', (t) => {
  const many = `{"a":[${'0,'.repeat(3_000_000)}0]}`;
  rejects(t, rawFile('many-values.safetensors', many), 'ERR_INVALID_FILE', 'values');
});

test('offsets past the end, reversed, or not integers', (t) => {
  rejects(
    t,
    headerFile('past-end.safetensors', '{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 8),
    'ERR_INVALID_FILE',
    'tensor "x"',
    'data_offsets',
  );
  rejects(
    t,
    headerFile('reversed.safetensors', '{"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}', 8),
    'ERR_INVALID_FILE',
    'tensor "x"',
    '[8, 4]',
  );
  rejects(
    t,
    headerFile('neg-offset.safetensors', '{"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', 8),
    'ERR_INVALID_FILE',
    'tensor "x"',
    '-4',
  );
  rejects(
    t,
    headerFile('float-offset.safetensors', '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0.5,4]}}', 8),
    'ERR_INVALID_FILE',
    'tensor "x"',
  );
  rejects(
    t,
    headerFile('three-offsets.safetensors', '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', 8),
    'ERR_INVALID_FILE',
    'tensor "x"',
    'data_offsets',
  );
  rejects(
    t,
    headerFile(
      'huge-offset.safetensors',
      '{"x":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}}',
      8,
    ),
    'ERR_INVALID_FILE',
    'tensor "x"',
  );
});

test('overlapping tensors are refused, also when an empty tensor sits between them', (t) => {
  const two =
    '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}';
  rejects(t, headerFile('overlap.safetensors', two, 16), 'ERR_INVALID_FILE', 'overlaps', '"a"', '"b"');
  const hidden =
    '{"big":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},"empty":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"late":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}';
  rejects(
    t,
    headerFile('overlap-hidden.safetensors', hidden, 32),
    'ERR_INVALID_FILE',
    'tensor "late"',
    'overlaps tensor "big"',
  );
  const contained =
    '{"outer":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},"in1":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"in2":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}}';
  rejects(t, headerFile('overlap-contained.safetensors', contained, 32), 'ERR_INVALID_FILE', 'overlaps tensor "outer"');
  const same =
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  rejects(t, headerFile('overlap-same.safetensors', same, 4), 'ERR_INVALID_FILE', 'overlaps');
  // Touching but disjoint, and empty tensors anywhere, are fine.
  const touching =
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  t.is(readSafetensorsHeader(headerFile('touching.safetensors', touching, 8)).tensors.length, 3);
});

test('unknown dtype is ERR_UNSUPPORTED naming the tensor', (t) => {
  rejects(
    t,
    headerFile('dtype.safetensors', '{"q":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}', 4),
    'ERR_UNSUPPORTED',
    'tensor "q"',
    'F8_E4M3',
  );
  rejects(
    t,
    headerFile('dtype-lower.safetensors', '{"q":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', 4),
    'ERR_UNSUPPORTED',
    '"f32"',
  );
  rejects(
    t,
    headerFile('dtype-num.safetensors', '{"q":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}', 4),
    'ERR_INVALID_FILE',
    'tensor "q"',
    'dtype',
  );
});

test('shape and byte size must agree', (t) => {
  rejects(
    t,
    headerFile('size.safetensors', '{"m":{"dtype":"F16","shape":[2,3],"data_offsets":[0,16]}}', 16),
    'ERR_INVALID_FILE',
    'tensor "m"',
    '12 bytes',
    '[2, 3]',
  );
  rejects(
    t,
    headerFile('size-small.safetensors', '{"m":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}', 8),
    'ERR_INVALID_FILE',
    'tensor "m"',
    '16 bytes',
  );
});

test('bad shape dimensions: negative, fractional, overflowing, too many, wrong kind', (t) => {
  const shapeFile = (name: string, shape: string, bytes = 8): string =>
    headerFile(name, `{"s":{"dtype":"F32","shape":${shape},"data_offsets":[0,${bytes}]}}`, bytes);
  rejects(t, shapeFile('neg.safetensors', '[-2]'), 'ERR_INVALID_FILE', 'tensor "s"', '-2');
  rejects(t, shapeFile('frac.safetensors', '[1.5]'), 'ERR_INVALID_FILE', 'tensor "s"', 'integer');
  rejects(t, shapeFile('exp.safetensors', '[2e0]'), 'ERR_INVALID_FILE', 'tensor "s"', 'integer');
  rejects(t, shapeFile('str.safetensors', '["2"]'), 'ERR_INVALID_FILE', 'tensor "s"', '"2"');
  rejects(t, shapeFile('int64-overflow.safetensors', '[99999999999999999999]'), 'ERR_INVALID_FILE', 'tensor "s"');
  // The product overflows 64 bits: 2^32 * 2^32 elements must not wrap around to a small byte count.
  rejects(
    t,
    shapeFile('product-overflow.safetensors', '[4294967296, 4294967296]', 0),
    'ERR_INVALID_FILE',
    'tensor "s"',
    'overflow',
  );
  // 2^62 F64 elements would be 2^65 bytes = 0 mod 2^64: must not pass as an empty tensor.
  rejects(
    t,
    headerFile('bytes-wrap.safetensors', '{"s":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}', 0),
    'ERR_INVALID_FILE',
    'tensor "s"',
  );
  rejects(
    t,
    shapeFile('empty-but-huge.safetensors', '[0, 9007199254740993]', 0),
    'ERR_INVALID_FILE',
    'tensor "s"',
    '2^53',
  );
  rejects(t, shapeFile('rank9.safetensors', '[1,1,1,1,1,1,1,1,2]'), 'ERR_INVALID_FILE', 'tensor "s"', 'at most 8');
  rejects(t, shapeFile('shape-obj.safetensors', '{"0":2}'), 'ERR_INVALID_FILE', 'tensor "s"', 'shape');
});

test('entries that are not tensor objects, and bad metadata', (t) => {
  rejects(t, headerFile('entry-num.safetensors', '{"n":5}', 0), 'ERR_INVALID_FILE', 'tensor "n"');
  rejects(
    t,
    headerFile('entry-missing.safetensors', '{"n":{"dtype":"F32","shape":[1]}}', 4),
    'ERR_INVALID_FILE',
    'tensor "n"',
    'data_offsets',
  );
  rejects(t, headerFile('meta-array.safetensors', '{"__metadata__":[1]}', 0), 'ERR_INVALID_FILE', '__metadata__');
  rejects(t, headerFile('meta-value.safetensors', '{"__metadata__":{"k":1}}', 0), 'ERR_INVALID_FILE', '"k"');
});

test('duplicate tensor names are refused', (t) => {
  const dup = `{${ok('d')},"d":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}`;
  rejects(t, headerFile('dup.safetensors', dup, 20), 'ERR_INVALID_FILE', 'tensor "d"', 'duplicate');
});

test('metadata keys are plain own properties, even __proto__', (t) => {
  const path = headerFile('proto.safetensors', '{"__metadata__":{"__proto__":"x","constructor":"y"}}', 0);
  const { metadata } = readSafetensorsHeader(path);
  t.deepEqual(Object.keys(metadata).sort(), ['__proto__', 'constructor']);
  t.is(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value, 'x');
  t.is(Object.getPrototypeOf(metadata), Object.prototype);
});

test('names with escapes and unicode round-trip', (t) => {
  const path = headerFile(
    'unicode.safetensors',
    '{"caf\\u00e9.\\"q\\"\\ud83d\\ude00":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}',
    3,
  );
  t.is(readSafetensorsHeader(path).tensors[0].name, 'café."q"😀');
});

function* safetensorsFiles(root: string): Generator<string> {
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) yield* safetensorsFiles(p);
    else if (e.name.endsWith('.safetensors')) yield p;
  }
}

test('every fixture file parses and agrees with the reference TS reader', (t) => {
  const files = [...safetensorsFiles(fixturesDir)];
  t.true(files.length >= 50, `found ${files.length} fixture files`);
  for (const path of files) {
    const h = readSafetensorsHeader(path);
    const buf = readFileSync(path);
    const raw = JSON.parse(buf.subarray(8, 8 + h.headerBytes).toString('utf8')) as Record<string, any>;
    const names = Object.keys(raw).filter((k) => k !== '__metadata__');
    t.is(h.tensors.length, names.length, relative(fixturesDir, path));
    t.is(h.fileSize, buf.length);
    for (const info of h.tensors) {
      const ref = raw[info.name];
      t.is(info.dtype, ref.dtype);
      t.deepEqual(info.shape, ref.shape);
      t.deepEqual(info.dataOffsets, ref.data_offsets);
    }
    t.deepEqual(h.metadata, raw.__metadata__ ?? {});
  }
});

test('the single-file checkpoints have the expected tensor counts and dtypes', (t) => {
  const sd1 = readSafetensorsHeader(join(fixturesDir, 'models', 'tiny-sd1.safetensors'));
  t.is(sd1.tensors.length, 1009);
  t.true(sd1.tensors.filter((x) => x.name.startsWith('model.diffusion_model.')).length > 600);
  const fp16 = readSafetensorsHeader(join(fixturesDir, 'models', 'tiny-sd1-fp16.safetensors'));
  t.is(fp16.tensors.length, 1009);
  t.true(fp16.tensors.some((x) => x.dtype === 'F16'));
  const sd2 = readSafetensorsHeader(join(fixturesDir, 'models', 'tiny-sd2.safetensors'));
  t.is(
    sd2.tensors.length,
    Object.keys(readSafetensors(join(fixturesDir, 'models', 'tiny-sd2.safetensors')).tensors).length,
  );
});
