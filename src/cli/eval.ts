/** `dpo eval`: DPO metrics of a model or adapter on a preference data set (eval_ metrics as TRL logs them). */
import { DpoError } from '../errors.js';
import { DPOConfig } from '../dpo/config.js';
import { DPOTrainer } from '../dpo/trainer.js';
import { Dataset } from '../data/dataset.js';
import { loadCausalLM } from '../models/load.js';
import { loadPolicy } from './load-policy.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';
import { judgeEvalCommand, wantsJudgeEval } from './eval-judge.js';

export const EVAL_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'model directory, HF model id, or adapter directory'),
  spec('adapter_name_or_path', 'string?', null, 'a PEFT adapter (its base model, adapters off, is the reference)'),
  spec('ref_model_name_or_path', 'string?', null, 'reference model for a fully fine-tuned model (default: the model itself)'),
  spec('dataset_name', 'string?', null, 'data file or dataset directory'),
  spec('dataset_test_split', 'string', 'test', 'split of a dataset directory (a plain file is used whole)'),
  spec('beta', 'float', 0.1, 'β of the implicit rewards'),
  spec('loss_type', 'strings', ['sigmoid'], 'loss types for eval_loss'),
  spec('max_length', 'int?', 1024, 'truncate prompt+completion to this many tokens'),
  spec('per_device_eval_batch_size', 'int', 8, 'pairs per batch'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

export async function evalCommand(argv: string[]): Promise<void> {
  // --judge / --prompts: held-out judge score, win-rate and KL against the base (eval-judge.ts).
  if (wantsJudgeEval(argv)) return judgeEvalCommand(argv);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('eval', 'DPO metrics of a model / adapter on a data set', EVAL_SPECS));
    return;
  }
  const o = resolveOptions(argv, EVAL_SPECS, 'eval');
  if (!o.model_name_or_path || !o.dataset_name) throw new DpoError('dpo eval: --model_name_or_path and --dataset_name are required');
  const p = loadPolicy(o.model_name_or_path as string, (o.adapter_name_or_path as string | null) ?? null);
  const path = o.dataset_name as string;
  let ds: Dataset;
  try {
    ds = await Dataset.fromFile(path, { split: o.dataset_test_split as string });
  } catch (e) {
    ds = await Dataset.fromFile(path, { split: 'train' }).catch(() => {
      throw e;
    });
  }
  const args = new DPOConfig({ beta: o.beta, loss_type: o.loss_type, max_length: o.max_length, per_device_eval_batch_size: o.per_device_eval_batch_size, per_device_train_batch_size: o.per_device_eval_batch_size, max_steps: 1, output_dir: '.',
    // An evaluation tool reports exact float32 metrics (no --bf16 here); there is no backward to checkpoint.
    bf16: false, gradient_checkpointing: false });
  const refModel = !p.adapter && o.ref_model_name_or_path ? loadCausalLM(o.ref_model_name_or_path as string).model : null;
  const trainer = new DPOTrainer({ model: p.model, args, trainDataset: ds, evalDataset: ds, processingClass: p.tokenizer, refModel, adapterReference: 'base', warn: (m) => console.error(`warning: ${m}`) });
  const m = trainer.evaluate();
  console.log(`${ds.length} pairs, reference: ${p.adapter ? 'base model (adapter off)' : refModel ? o.ref_model_name_or_path : 'the model itself'}`);
  for (const [k, v] of Object.entries(m)) if (k.startsWith('eval_')) console.log(`${k.padEnd(28)} ${Number.isInteger(v) ? v : v.toFixed(6)}`);
}
