// A character-level tokenizer for the smallest runs: one id per Unicode code point seen in the
// training text (sorted, after an unknown-character id 0), saved and loaded as a small JSON.
import { readFileSync, writeFileSync } from 'node:fs';

export const UNK = '\uFFFD'; // what an unknown character decodes to

export class CharTokenizer {
  /** `chars`: the known code points in id order (ids start at 1; 0 is the unknown character). */
  constructor(chars) {
    this.kind = 'char';
    this.chars = [...chars];
    this.ids = new Map(this.chars.map((c, i) => [c, i + 1]));
    if (this.ids.size !== this.chars.length)
      throw new Error('CharTokenizer: the character list has duplicates');
    this.vocabSize = this.chars.length + 1;
    this.unk = 0;
  }

  /** The vocabulary of `text`: its distinct code points, sorted. */
  static train(text) {
    return new CharTokenizer([...new Set(text)].sort());
  }

  /** Text → Int32Array of ids; a character outside the vocabulary becomes id 0. */
  encode(text) {
    const out = [];
    for (const c of text) out.push(this.ids.get(c) ?? this.unk);
    return Int32Array.from(out);
  }

  /** Ids → text; id 0 (and any id outside the vocabulary) decodes to U+FFFD. */
  decode(ids) {
    let s = '';
    for (const i of ids) s += (i >= 1 && i <= this.chars.length && this.chars[i - 1]) || UNK;
    return s;
  }

  toJSON() {
    return { type: 'char', unk: UNK, chars: this.chars };
  }

  save(path) {
    writeFileSync(path, JSON.stringify(this.toJSON()));
  }

  /** From a saved file path, a JSON string or the object itself. */
  static load(json) {
    if (typeof json === 'string')
      json = JSON.parse(json.trimStart().startsWith('{') ? json : readFileSync(json, 'utf8'));
    if (json?.type !== 'char' || !Array.isArray(json.chars))
      throw new Error('CharTokenizer.load: not a character tokenizer file');
    return new CharTokenizer(json.chars);
  }
}
