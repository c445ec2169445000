// The SpamAssassin loader (examples/data/spam.mjs: MIME decoding, HTML to text, labels) and the
// bag-of-words baseline of examples/bert-spam (features against a float64 recomputation, and a
// short training run that must separate spam from ham).
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from 'nabla';
// @ts-expect-error plain JS example module
import { emailText, htmlText, spamAssassin } from '../examples/data/spam.mjs';
// @ts-expect-error plain JS example module
import { bagOfWords, bowFeatures, bowVocabulary, words } from '../examples/bert-spam/bow.mjs';

beforeAll(async () => {
  await nb.init();
});

describe('SpamAssassin corpus', () => {
  it('has 4,150 ham and 1,896 spam emails with readable text', () => {
    const mails = spamAssassin() as { label: number; text: string; group: string }[];
    expect(mails.length).toBe(6046);
    expect(mails.filter((m) => m.label === 1).length).toBe(1896);
    expect(mails.every((m) => (m.label === 1) === m.group.startsWith('spam'))).toBe(true);
    // Headers beyond the subject are gone (they hold the servers' spam verdicts); one ham
    // email quotes such a header in its body.
    expect(mails.filter((m) => /^X-Spam-Status:/m.test(m.text)).length).toBe(1);
    expect(mails.filter((m) => /^Return-Path:/m.test(m.text)).length).toBeLessThan(10);
    expect(mails.filter((m) => m.text.length > 20).length).toBeGreaterThan(6000);
  });

  it('decodes MIME parts, encodings and HTML', () => {
    const mail = [
      'From: a@b.c',
      'Subject: =?iso-8859-1?Q?Caf=E9_deal?=',
      'Content-Type: multipart/mixed; boundary="XX"',
      '',
      '--XX',
      'Content-Type: multipart/alternative; boundary=YY',
      '',
      '--YY',
      'Content-Type: text/plain',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Buy n=',
      'ow =3D 50% off',
      '--YY',
      'Content-Type: text/html',
      '',
      '<p>Buy now</p>',
      '--YY--',
      '--XX',
      'Content-Type: text/html',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('<b>Second</b>&amp;<script>x()</script>part&#33;').toString('base64'),
      '--XX',
      'Content-Type: application/octet-stream',
      '',
      'AAAA',
      '--XX--',
    ].join('\n');
    expect(emailText(mail)).toBe('Café deal\nBuy now = 50% off\nSecond & part!');
    expect(htmlText('a<br>b&lt;c&#x41;')).toBe('a\nb<cA');
  });
});

describe('bag-of-words baseline', () => {
  it('builds log-count features with unit rows over the training vocabulary', () => {
    const texts = ['Win $100 now now', 'meeting now', 'win win', 'hello'];
    const vocab = bowVocabulary(texts, { minCount: 2 }) as Map<string, number>;
    expect([...vocab.keys()]).toEqual(['now', 'win']); // document frequency 2 each, by name
    expect(words('Win $100, NOW!')).toEqual(['win', '$100', 'now!']);
    const x = nb.tidy(() => bowFeatures(texts, vocab).toArray());
    const row0 = [Math.log(3), Math.log(2)];
    const n0 = Math.hypot(...row0);
    expect(x[0]).toBeCloseTo(row0[0] / n0, 6);
    expect(x[1]).toBeCloseTo(row0[1] / n0, 6);
    expect(Array.from(x.slice(2, 4))).toEqual([1, 0]);
    expect(Array.from(x.slice(6, 8))).toEqual([0, 0]); // no known word: a zero row
  });

  it('separates spam from ham on a slice of the corpus', () => {
    const mails = (spamAssassin({ maxChars: 2000 }) as { label: number; text: string }[]).filter(
      (_, i) => i % 6 === 0,
    );
    const part = (r: number) => {
      const s = mails.filter((_, i) => i % 4 === r);
      return { texts: s.map((m) => m.text), labels: s.map((m) => m.label) };
    };
    const split = {
      train: { texts: [] as string[], labels: [] as number[] },
      val: part(2),
      test: part(3),
    };
    for (const p of [part(0), part(1)]) {
      split.train.texts.push(...p.texts);
      split.train.labels.push(...p.labels);
    }
    const r = bagOfWords(split, { epochs: 60 });
    const f1 = nb.metrics.precisionRecallF1(
      nb.tensor(r.pred, { dtype: 'int32' }),
      nb.tensor(split.test.labels, { dtype: 'int32' }),
      { numClasses: 2 },
    ).f1[1];
    expect(f1).toBeGreaterThan(0.85);
    expect(r.parameters).toBe(r.vocabulary * 2 + 2);
  });
});
