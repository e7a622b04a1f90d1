// Text clean-up in front of CLIP's BPE, in the two ways Hugging Face's CLIPTokenizer does it:
//
// * `ftfy` (what you get with ftfy installed, the usual SD set-up, and our default):
//   `whitespace_clean(ftfy.fix_text(text)).lower()`. `fixTextLikeFtfy` reimplements ftfy 6's default
//   `fix_text` pipeline per line: HTML entity unescape ("auto": skipped on a line that contains '<'),
//   UTF-8-read-as-Windows-1252 mojibake repair (a conservative subset of ftfy's fix_encoding: only whole
//   lines that carry a typical mojibake pair and round-trip cleanly), C1 controls read as Windows-1252,
//   Latin ligatures, full-width/half-width forms (NFKC on U+FF01..U+FFEF, U+3000 -> space), curly quotes
//   to straight, line breaks, terminal escapes, control characters, then NFC; repeated until nothing
//   changes, as ftfy does.
// * `basic` (transformers' fallback without ftfy): BERT's BasicTokenizer(strip_accents=False,
//   do_split_on_punc=False): drops control/format characters (so a zero-width joiner disappears),
//   maps Unicode spaces to ' ', puts spaces around CJK ideographs, NFC, lower-cases per word. It does
//   not unescape HTML.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tokenizerDataDir } from './data-dir.js';

let htmlEntities: ReadonlyMap<string, string> | undefined;

/**
 * The WHATWG HTML5 named character references ftfy's unescape_html uses (every name ending in ';', plus
 * ftfy's upper-case variants), keyed without '&' and ';': models/tokenizers/html5-entities.json, generated
 * from Python's html.entities.html5. Read on the first named reference, not at start-up.
 */
function html5Entities(): ReadonlyMap<string, string> {
  // A Map, so that names like "constructor" are not found on Object.prototype.
  htmlEntities ??= new Map(
    Object.entries(JSON.parse(readFileSync(join(tokenizerDataDir(), 'html5-entities.json'), 'utf8')) as object),
  );
  return htmlEntities;
}

/** Python `str.isspace()` characters (what `re`'s `\s` and `str.split()` use on str). */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, 'g');
const PY_SPACE_EDGES = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/** transformers' `whitespace_clean`: runs of whitespace to one space, then strip. */
export function whitespaceClean(text: string): string {
  return text.replace(PY_SPACE_RUN, ' ').replace(PY_SPACE_EDGES, '');
}

// Windows-1252 bytes 0x80..0x9F; undefined bytes map to the C1 character itself ("sloppy" codec as ftfy).
const CP1252_HIGH =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const CP1252_ENCODE = new Map<string, number>();
for (let b = 0; b < 256; b++)
  CP1252_ENCODE.set(b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80] : String.fromCharCode(b), b);

/** html.unescape of one numeric reference, as Python's `html._replace_charref`. */
function numericCharref(num: number): string {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num < 0xa0) return CP1252_HIGH[num - 0x80];
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  const invalid =
    (num >= 0x1 && num <= 0x8) ||
    num === 0xb ||
    (num >= 0xe && num <= 0x1f) ||
    (num >= 0x7f && num <= 0x9f) ||
    (num >= 0xfdd0 && num <= 0xfdef) ||
    (num & 0xfffe) === 0xfffe;
  return invalid ? '' : String.fromCodePoint(num);
}

/** ftfy's `unescape_html`: `&#?[0-9A-Za-z]{1,24};` references; unknown or partial ones stay as written. */
export function unescapeHtml(text: string): string {
  return text.replace(/&#?[0-9A-Za-z]{1,24};/g, (ref) => {
    if (ref[1] !== '#') return html5Entities().get(ref.slice(1, -1)) ?? ref;
    const m = /^&#(?:([0-9]+)|[xX]([0-9a-fA-F]+));$/.exec(ref);
    if (!m) return ref;
    const num = m[1] !== undefined ? Number.parseInt(m[1], 10) : Number.parseInt(m[2], 16);
    return numericCharref(Number.isFinite(num) ? num : 0x110000);
  });
}

// A UTF-8 lead byte read as Windows-1252 (Â, Ã, Ä..., â, ã, ð) followed by a continuation byte read the same way.
const MOJIBAKE_HINT =
  /[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]/;
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true });

// ftfy's UTF8_DETECTOR_RE: a UTF-8 lead byte and its continuation bytes, each read as Windows-1252.
const CONT =
  '[\\x80-\\xbf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]';
const UTF8_DETECTOR = new RegExp(`[\u00c2-\u00df]${CONT}|[\u00e0-\u00ef]${CONT}{2}|[\u00f0-\u00f4]${CONT}{3}`, 'g');

function decodeCp1252AsUtf8(text: string): string | undefined {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const b = CP1252_ENCODE.get(text[i]);
    if (b === undefined) return undefined;
    bytes[i] = b;
  }
  try {
    return UTF8_STRICT.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * "cafÃ©" -> "café": a line holding a mojibake pair whose characters all encode to Windows-1252 bytes that
 * form valid UTF-8 is decoded as a whole; otherwise each embedded mojibake sequence (ftfy's
 * decode_inconsistent_utf8) is decoded on its own. ftfy also weighs a badness score and restores
 * spaces that were once U+00A0 ("Ã " -> "à"); those refinements are left out (a false repair is worse than
 * a missed one).
 */
function fixUtf8AsCp1252(text: string): string {
  if (!MOJIBAKE_HINT.test(text)) return text;
  const whole = decodeCp1252AsUtf8(text);
  if (whole !== undefined) return whole;
  return text.replace(UTF8_DETECTOR, (m) => decodeCp1252AsUtf8(m) ?? m);
}

const LIGATURES: Record<string, string> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

function fixCharacterWidth(text: string): string {
  return text.replace(/[\u3000\uff01-\uffef]/g, (c) => {
    if (c === '\u3000') return ' ';
    return c.normalize('NFKC');
  });
}

function fixOnce(segment: string, unescapeEntities: boolean): string {
  let t = segment;
  if (unescapeEntities) t = unescapeHtml(t);
  t = fixUtf8AsCp1252(t);
  t = t.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]); // fix_c1_controls
  t = t.replace(LIGATURE_RE, (c) => LIGATURES[c]);
  t = fixCharacterWidth(t);
  t = t.replace(/[\u02bc\u2018-\u201b]/g, "'").replace(/[\u201c-\u201f]/g, '"'); // uncurl_quotes
  t = t.replace(/\r\n|[\r\u2028\u2029\u0085]/g, '\n'); // fix_line_breaks
  t = t.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'); // fix_surrogates
  t = t.replace(/\x1b\[[0-9;]*[a-zA-Z]/g, ''); // remove_terminal_escapes
  t = t.replace(/[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g, ''); // remove_control_chars
  return t.normalize('NFC');
}

/** ftfy.fix_text with its default configuration, line by line (see the file header for what is covered). */
export function fixTextLikeFtfy(text: string): string {
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl + 1;
    let seg = text.slice(pos, end);
    const unescapeEntities = !seg.includes('<'); // unescape_html="auto"
    for (let i = 0; i < 16; i++) {
      const next = fixOnce(seg, unescapeEntities);
      if (next === seg) break;
      seg = next;
    }
    out += seg;
    pos = end;
  }
  return out;
}

/** CLIPTokenizer's clean-up with ftfy: `whitespace_clean(ftfy.fix_text(text)).lower()`. */
export function cleanFtfy(text: string): string {
  return whitespaceClean(fixTextLikeFtfy(text)).toLowerCase();
}

function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const CONTROL = /\p{C}/u; // Cc, Cf, Cs, Co, Cn: BasicTokenizer's _is_control (except \t \n \r)
const SPACE_SEPARATOR = /\p{Zs}/u;

/** CLIPTokenizer's clean-up without ftfy: `" ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))`. */
export function cleanBasic(text: string): string {
  let cleaned = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || SPACE_SEPARATOR.test(ch)) {
      cleaned += ' ';
    } else if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) {
    } else if (isCjkIdeograph(cp)) {
      cleaned += ` ${ch} `;
    } else {
      cleaned += ch;
    }
  }
  const words = cleaned
    .normalize('NFC')
    .split(PY_SPACE_RUN)
    .filter((w) => w.length > 0);
  return words.map((w) => w.toLowerCase()).join(' ');
}
