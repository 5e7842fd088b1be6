/**
 * Makes assets/demo-adder/: the `dpo demo` base model, a small Llama trained by this project with
 * the SFT loss (src/demo/sft.ts) on two-digit additions of the demo's *training* split only. Its
 * teacher is imperfect on purpose: on a problem whose units carry, the target is the right sum
 * with probability CORRECT_P and otherwise the sum with the carry forgotten (47+38 → 75), so the
 * model knows both and, greedily, mostly forgets to carry. Fixed seed: the same file every run.
 *
 *   npx tsc -p . && DPO_NUM_THREADS=1 nice node dist/tools/demo/make-demo-model.js [--steps N] [--out DIR]
 * (one thread: the matrices are tiny, and on a busy machine spinning OpenMP threads cost 5×)
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HfTokenizer } from '../../src/tokenizer/tokenizer.js';
import { saveCausalLM } from '../../src/models/load.js';
import { initModel } from '../../src/demo/init-model.js';
import { sftTrain, type SftExample } from '../../src/demo/sft.js';
import { carries, forgotCarry, split } from '../../src/demo/addition.js';
import { DEMO_MODEL_CONFIG, greedyAccuracy } from '../../src/demo/evaluate.js';
import { Rng } from '../../src/tensor/rng.js';

const CORRECT_P = 0.35;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const steps = Number(arg('steps', '3000'));
const out = arg('out', join(root, 'assets', 'demo-adder'));
const seed = 1234;

const tok = HfTokenizer.fromDir(join(root, 'assets', 'tiny-bpe'));
const eos = tok.eosTokenId!;
const { train, heldOut } = split();
const rng = new Rng(seed);
// Target i is the right sum of problem i; target n + i the carry-forgotten one (carry problems only).
const n = train.length;
const examples: SftExample[] = [];
for (const p of train) examples.push({ promptIds: tok.encode(p.prompt), completionIds: [...tok.encode(p.answer), eos] });
for (const p of train) examples.push({ promptIds: tok.encode(p.prompt), completionIds: [...tok.encode(forgotCarry(p)), eos] });
const model = initModel({ ...DEMO_MODEL_CONFIG, vocab_size: tok.vocabSize }, seed);
const B = 64;
const save = () => {
  mkdirSync(out, { recursive: true });
  saveCausalLM(model, out);
  tok.save(out);
};
const t0 = Date.now();
let ema = 0;
sftTrain(model, examples, tok.padTokenId!, {
  steps, batchSize: B, lr: 3e-3, weightDecay: 0.01,
  // A fresh draw of the teacher each step: the target of a carry problem is resampled.
  pick: () => Array.from({ length: B }, () => {
    const i = Math.floor(rng.nextFloat() * n);
    return carries(train[i]) && rng.nextFloat() >= CORRECT_P ? n + i : i;
  }),
  onStep: (s, l) => {
    ema = s ? 0.98 * ema + 0.02 * l : l;
    if ((s + 1) % 100 === 0) console.log(`step ${s + 1}/${steps} loss ${ema.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    if ((s + 1) % 500 === 0 && s + 1 < steps) {
      const a = greedyAccuracy(model, tok, heldOut.slice(0, 200));
      console.log(`  held-out greedy accuracy ${(100 * a.accuracy).toFixed(1)}% (carry ${(100 * a.carry).toFixed(1)}%, no carry ${(100 * a.noCarry).toFixed(1)}%)`);
      save();
    }
  },
});
const probe = heldOut.slice(0, 400);
const acc = greedyAccuracy(model, tok, probe);
console.log(`held-out greedy accuracy ${(100 * acc.accuracy).toFixed(1)}% (carry ${(100 * acc.carry).toFixed(1)}%, no carry ${(100 * acc.noCarry).toFixed(1)}%) on ${probe.length} problems`);
save();
console.log(`wrote ${out}`);
