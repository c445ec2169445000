// End to end: examples/bert-spam/train.mjs --quick (tiny BERT, 300 MLM steps, every 6th email).
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('examples/bert-spam --quick', () => {
  it('pretrains, fine-tunes three ways and beats chance; LoRA leaves the base unchanged', () => {
    const out = mkdtempSync(join(tmpdir(), 'bert-spam-'));
    const stdout = execFileSync(
      'node',
      ['examples/bert-spam/train.mjs', '--quick', '--json', '--out', out],
      { encoding: 'utf8', timeout: 170_000 },
    );
    const s = JSON.parse(stdout.trim().split('\n').pop()!);
    // MLM: validation loss well under ln(V), the loss of a uniform guess.
    expect(s.pretrain.initialValLoss).toBeGreaterThan(Math.log(s.vocabSize) - 0.2);
    expect(s.pretrain.bestValLoss).toBeLessThan(Math.log(s.vocabSize) - 0.8);
    const rows = Object.fromEntries(s.rows.map((r: { method: string }) => [r.method, r]));
    expect(Object.keys(rows).sort()).toEqual(['bow', 'frozen', 'full', 'lora']);
    // Always answering spam gives F1(spam) ≈ 0.48 on this subset (47 of 150 test emails).
    expect(rows.full.testF1).toBeGreaterThan(0.7);
    expect(rows.lora.testF1).toBeGreaterThan(0.5);
    expect(rows.frozen.testF1).toBeGreaterThan(0.5);
    expect(rows.bow.testF1).toBeGreaterThan(0.85);
    // LoRA r 8 on query/value of 2 layers of width 32, plus pooler and classifier.
    const { hidden_size: H, num_hidden_layers: L } = s.config;
    expect(rows.lora.trainable).toBe(L * 2 * 8 * (H + H) + (H * H + H) + (H * 2 + 2));
    expect(rows.lora.baseUnchanged).toBe(true);
    expect(rows.frozen.trainable).toBe(H * H + H + H * 2 + 2);
    expect(rows.full.trainable).toBe(rows.full.total);
  }, 180_000);
});
