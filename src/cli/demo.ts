/**
 * `dpo demo`: online DPO that visibly helps, no downloads. The base model (assets/demo-adder, made
 * by tools/demo/make-demo-model.ts) adds two-digit numbers but usually forgets the carry. Each
 * round samples answers to training problems, a TypeScript judge checks the sums, the right and a
 * wrong answer become a pair, and DPO trains on them; held-out problems (never trained on) measure
 * greedy accuracy before → after. `--seed-example` runs the seed's 7-pair demo instead.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DpoError } from '../errors.js';
import { DPOConfig } from '../dpo/config.js';
import { iterativeDPO, iterativeHistory, type RoundRecord } from '../dpo/iterative.js';
import { additionJudge, carries, sample, split } from '../demo/addition.js';
import { greedyAccuracy } from '../demo/evaluate.js';
import { writeRoundsReport } from '../report/rounds-report.js';
import { getBackend } from '../backend/index.js';
import { loadPolicy } from './load-policy.js';
import { runTraining } from './run-training.js';
import { seedExampleDemo } from './demo-seed.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

function packageRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}

export const DEMO_SPECS: Spec[] = [
  spec('output_dir', 'string', 'dpo_demo', 'where the rounds, checkpoints, metrics and report go'),
  spec('iterations', 'int', 4, 'rounds of sample → judge → DPO'),
  spec('prompts_per_round', 'int', 128, 'training problems sampled each round'),
  spec('num_generations', 'int', 6, 'answers sampled per problem'),
  spec('heldout_size', 'int', 400, 'held-out problems the greedy accuracy is measured on'),
  spec('learning_rate', 'float?', null, 'DPO learning rate (default 2e-5; the seed example: 1e-4)'),
  spec('beta', 'float?', null, 'DPO β (default 0.1)'),
  spec('max_steps', 'int?', null, 'the seed example only: DPO steps (default 40)'),
  spec('seed', 'int', 42, 'seed of the run'),
  spec('seed_example', 'bool', false, "run the seed's demo instead: DPO on the 7 pairs of examples/dpo_example.json"),
  spec('quiet', 'bool', false, 'no progress output'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export async function demoCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('demo', 'online DPO on a small built-in model that forgets to carry in addition (no downloads)', DEMO_SPECS));
    return;
  }
  const o = resolveOptions(argv, DEMO_SPECS, 'demo');
  const root = packageRoot();
  // The demo models' matrices are too small to split across threads: one thread is faster, and far
  // faster on a busy machine, where waiting OpenMP threads spin (measured: 21 s vs 134 s).
  if (!process.env.DPO_NUM_THREADS) getBackend().setNumThreads(1);
  if (o.seed_example) return seedExampleDemo(o, root);
  const t0 = Date.now();
  const outDir = resolve(o.output_dir as string);
  const quiet = o.quiet as boolean;
  const say = (m = '') => {
    if (!quiet) console.log(m);
  };
  for (const k of ['iterations', 'prompts_per_round', 'num_generations', 'heldout_size'] as const) {
    if (!((o[k] as number) >= 1)) throw new DpoError(`dpo demo: --${k} must be ≥ 1, got ${o[k]}`);
  }
  const assetDir = join(root, 'assets', 'demo-adder');
  const policy = loadPolicy(assetDir);
  const tok = policy.tokenizer;
  const { train, heldOut } = split();
  const seed = o.seed as number;
  const probe = sample(heldOut, o.heldout_size as number, 1);
  const klProbe = sample(heldOut, 48, 2).map((p) => ({ prompt: p.prompt }));
  say(`dpo demo: online DPO on two-digit addition ("47+38=" → "85")`);
  say(`base model: ${assetDir} (a ${(policy.model.parameters().reduce((a, p) => a + p.size, 0) / 1e3).toFixed(0)}k-parameter Llama taught by tools/demo/make-demo-model.ts; it often forgets to carry)`);
  say(`judge: the answer is the right sum (1) or not (0); ${train.length} training problems, ${heldOut.length} held-out problems never trained on (${probe.length} measured)`);
  const before = greedyAccuracy(policy.model, tok, probe);
  const args = new DPOConfig({
    output_dir: outDir, per_device_train_batch_size: 8, gradient_accumulation_steps: 1, num_train_epochs: 2,
    learning_rate: (o.learning_rate as number | null) ?? 2e-5, beta: (o.beta as number | null) ?? 0.1, lr_scheduler_type: 'constant',
    logging_steps: 1, save_strategy: 'no', seed, max_length: 32,
    // A model this small needs no memory saving; float32 keeps it exact.
    gradient_checkpointing: false, bf16: false,
  });
  say(`\neach round: ${o.prompts_per_round} training problems × ${o.num_generations} sampled answers → judge → pairs (right vs wrong) → DPO (full fine-tuning, lr ${args.learningRate}, β ${args.beta}, reference = the previous round's model)`);
  say(`round 0 (base): held-out greedy accuracy ${pct(before.accuracy)} (with a carry ${pct(before.carry)}, without ${pct(before.noCarry)})`);
  const iterations = o.iterations as number;
  const { records } = await iterativeDPO({
    model: policy.model, tokenizer: tok, judge: additionJudge, iterations, args, refUpdate: 'round', resume: false,
    prompts: (k) => sample(train, o.prompts_per_round as number, seed * 1000 + k).map((p) => ({ prompt: p.prompt })),
    generation: { numGenerations: o.num_generations as number, maxNewTokens: 5, temperature: 1, topK: 0 },
    heldOut: { prompts: klProbe, numSamples: 2, maxNewTokens: 5 },
    evaluate: (m, k) => {
      const a = k === 0 ? before : greedyAccuracy(m, tok, probe);
      return { heldout_accuracy: a.accuracy, heldout_accuracy_carry: a.carry };
    },
    train: async (init, _resume, k) => (await runTraining(init, { title: `dpo demo: round ${k}`, settings: { round: k }, quiet: true, resumeHint: () => 'dpo demo does not resume; rerun it to start over' })).trainer,
    onPairs: (k, s) => say(`round ${k}: ${s.written} pairs (${s.ties} problems all right or all wrong, skipped)`),
    onRound: (r: RoundRecord) => {
      if (r.round > 0) say(`round ${r.round}: ${r.steps} DPO steps, train_loss ${r.train_loss?.toFixed(3) ?? '-'}; held-out greedy accuracy ${pct(r.heldout_accuracy as number)} (with a carry ${pct(r.heldout_accuracy_carry as number)}); sampled score ${r.heldout_score?.toFixed(2)}, KL to base ${r.heldout_kl?.toFixed(2)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    },
    modelNameOrPath: assetDir,
  });
  const after = greedyAccuracy(policy.model, tok, probe);
  say(`\nheld-out greedy accuracy: ${pct(before.accuracy)} → ${pct(after.accuracy)}   (problems with a carry: ${pct(before.carry)} → ${pct(after.carry)}; without: ${pct(before.noCarry)} → ${pct(after.noCarry)})`);
  say('some held-out answers, before → after:');
  const shown = probe.map((p, i) => i).filter((i) => carries(probe[i])).slice(0, 6);
  for (const i of shown) {
    const mark = (s: string) => `${s.padEnd(4)} ${additionJudge(probe[i].prompt, s) ? '✓' : '✗'}`;
    say(`  ${probe[i].prompt.padEnd(7)} ${mark(before.answers[i])} → ${mark(after.answers[i])}`);
  }
  const reportPath = join(outDir, 'report.html');
  writeRoundsReport(reportPath, {
    title: 'dpo demo: online DPO on two-digit addition', runs: [{ beta: args.beta, records }], history: iterativeHistory(outDir, iterations),
    settings: { model: assetDir, ...args.toJSON() }, extraKeys: [{ key: 'heldout_accuracy', label: 'held-out greedy accuracy' }],
    summary: { 'held-out greedy accuracy': `${pct(before.accuracy)} → ${pct(after.accuracy)}`, 'held-out problems': probe.length },
  });
  say(`\nmodel: ${join(outDir, `round-${iterations}`)}/model.safetensors   rounds: ${outDir}/round-*/round.json`);
  say(`report: ${reportPath}`);
  say(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
