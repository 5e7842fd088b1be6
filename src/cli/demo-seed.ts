/**
 * `dpo demo --seed-example`: the seed's demo, on built-in defaults, no downloads. A small Llama-architecture model
 * is created from a seed and saved as a normal checkpoint with a real byte-level BPE tokenizer,
 * taught to answer the seed's prompts (a short supervised warm-up on both answers), then aligned
 * with DPO on the seed's preference pairs. It prints per-pair log-probs and greedy answers before
 * and after, the progress, the final metrics and the report's path.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { backward, noGrad } from '../autograd/tape.js';
import { mean, neg } from '../ops/index.js';
import { scope } from '../tensor/pool.js';
import { initModel } from '../demo/init-model.js';
import { saveCausalLM } from '../models/load.js';
import type { CausalLM } from '../models/causal-lm.js';
import { HfTokenizer } from '../tokenizer/tokenizer.js';
import { Dataset } from '../data/dataset.js';
import { prepareRows } from '../data/prepare.js';
import { collate } from '../data/collate.js';
import { DPOConfig } from '../dpo/config.js';
import { sequenceLogps } from '../dpo/logps.js';
import { AdamW } from '../optim/index.js';
import { generate } from '../generate/generate.js';
import { loadPolicy } from './load-policy.js';
import { runTraining } from './run-training.js';


const DEMO_CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 96, intermediate_size: 256, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000,
  tie_word_embeddings: true, hidden_act: 'silu', torch_dtype: 'float32', initializer_range: 0.02,
};

/** Supervised warm-up on both answers of every pair, so the model can say either. */
function warmUp(model: CausalLM, tok: HfTokenizer, ds: Dataset, steps: number): void {
  const { pairs } = prepareRows(ds.rows, tok, { maxLength: null, truncationMode: 'keep_start' }, false);
  const batch = collate(pairs, { padTokenId: tok.padTokenId!, maxLength: null, truncationMode: 'keep_start', padToMultipleOf: null });
  for (const p of model.parameters()) p.requiresGrad = true;
  const opt = new AdamW(model.namedParameters(), { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  model.train();
  for (let s = 0; s < steps; s++) {
    scope(() => {
      const { tokenLogps } = sequenceLogps(model, batch);
      backward(neg(mean(tokenLogps)));
    });
    opt.update(1e-2);
    opt.zeroGrad();
  }
  model.eval();
}

interface Snapshot {
  logps: [number, number][];
  answers: string[];
}

function snapshot(model: CausalLM, tok: HfTokenizer, ds: Dataset, prompts: string[]): Snapshot {
  const { pairs } = prepareRows(ds.rows, tok, { maxLength: null, truncationMode: 'keep_start' }, false);
  const b = collate(pairs, { padTokenId: tok.padTokenId!, maxLength: null, truncationMode: 'keep_start', padToMultipleOf: null });
  const lp = scope(() => noGrad(() => Float64Array.from(sequenceLogps(model, b).logps.data)));
  const B = pairs.length;
  const eos = [tok.eosTokenId!];
  return {
    logps: Array.from({ length: B }, (_, i) => [lp[i], lp[i + B]] as [number, number]),
    answers: prompts.map((p) => tok.decode(generate(model, tok.encode(p), { maxNewTokens: 12, eosTokenIds: eos }), { skipSpecialTokens: true }).trim()),
  };
}

/** The seed's 7-pair demo; `o` holds the demo's options. */
export async function seedExampleDemo(o: Record<string, unknown>, root: string): Promise<void> {
  const outDir = resolve(o.output_dir as string);
  const quiet = o.quiet as boolean;
  const say = (m = '') => {
    if (!quiet) console.log(m);
  };
  const tokDir = join(root, 'assets', 'tiny-bpe');
  const ds = await Dataset.fromFile(join(root, 'examples', 'dpo_example.json'));
  const baseDir = join(outDir, 'base-model');
  mkdirSync(baseDir, { recursive: true });
  say(`dpo demo: ${ds.length} preference pairs from examples/dpo_example.json (the seed's example)`);
  const t0 = Date.now();
  {
    const tok = HfTokenizer.fromDir(tokDir);
    const model = initModel({ ...DEMO_CONFIG, vocab_size: tok.vocabSize }, o.seed as number);
    warmUp(model, tok, ds, 60);
    saveCausalLM(model, baseDir);
    tok.save(baseDir);
  }
  say(`built-in model: Llama architecture, ${DEMO_CONFIG.num_hidden_layers} layers, hidden ${DEMO_CONFIG.hidden_size}, warmed up on both answers (${((Date.now() - t0) / 1000).toFixed(1)} s) → ${baseDir}`);
  // From here on, the real loaders, exactly as for a downloaded checkpoint.
  const policy = loadPolicy(baseDir);
  const prompts = [...new Set(ds.rows.map((r) => r.prompt as string))];
  const before = snapshot(policy.model, policy.tokenizer, ds, prompts);
  const args = new DPOConfig({
    output_dir: outDir, per_device_train_batch_size: ds.length, gradient_accumulation_steps: 1, max_steps: o.max_steps ?? 40,
    learning_rate: o.learning_rate ?? 1e-4, beta: o.beta ?? 0.1, logging_steps: 1, save_steps: 20, save_total_limit: 1, seed: o.seed,
    lr_scheduler_type: 'constant', max_length: 64,
    // A model this small needs no memory saving; recomputing activations would only slow the demo (same numbers).
    gradient_checkpointing: false,
  });
  say(`\nDPO: full fine-tuning, ${args.maxSteps} steps, lr ${args.learningRate}, beta ${args.beta}, loss sigmoid`);
  const { trainer, reportPath } = await runTraining(
    { model: policy.model, args, trainDataset: ds, processingClass: policy.tokenizer, modelNameOrPath: baseDir, warn: () => {} },
    { title: 'dpo demo: the seed example', settings: { model: baseDir, dataset: 'examples/dpo_example.json' }, quiet, resumeHint: () => 'dpo demo does not resume; rerun it to start over' },
  );
  const after = snapshot(trainer.model, policy.tokenizer, ds, prompts);
  const last = [...trainer.state.log_history].reverse().find((e) => 'rewards/accuracies' in e && 'loss' in e)!;
  say(`\nfinal metrics: loss ${last.loss.toFixed(4)}, rewards/accuracies ${last['rewards/accuracies'].toFixed(2)}, rewards/margins ${last['rewards/margins'].toFixed(3)}, rewards/chosen ${last['rewards/chosen'].toFixed(3)}, rewards/rejected ${last['rewards/rejected'].toFixed(3)}`);
  say('\nper-pair completion log-probs (chosen / rejected), before → after:');
  ds.rows.forEach((r, i) => {
    const [cb, rb] = before.logps[i];
    const [ca, ra] = after.logps[i];
    say(`  ${JSON.stringify(r.prompt).padEnd(42)} ${JSON.stringify(r.chosen).padEnd(22)} ${cb.toFixed(2).padStart(7)} → ${ca.toFixed(2).padStart(7)}   ${JSON.stringify(r.rejected).padEnd(22)} ${rb.toFixed(2).padStart(7)} → ${ra.toFixed(2).padStart(7)}`);
  });
  say('\ngreedy answers, before → after:');
  prompts.forEach((p, i) => say(`  ${JSON.stringify(p).padEnd(42)} ${JSON.stringify(before.answers[i]).padEnd(26)} → ${JSON.stringify(after.answers[i])}`));
  say(`\nmodel: ${outDir}/model.safetensors   metrics: ${outDir}/metrics.jsonl`);
  say(`report: ${reportPath}`);
  say(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
