/** `dpo train`: TRL's `trl dpo` flags, same outputs. */
import { DpoError } from '../errors.js';
import { DPOConfig } from '../dpo/config.js';
import { TRAINING_OPTIONS } from '../dpo/options.js';
import { loraConfigFromOptions } from '../lora/config.js';
import { Dataset } from '../data/dataset.js';
import { scriptDatasets, type ScriptDataArgs } from '../data/script-data.js';
import { loadPolicy } from './load-policy.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';
import { runTraining } from './run-training.js';
import { describeBf16, describeCompute } from '../backend/index.js';
import { assertRunFits, estimateTraining } from '../models/memory-estimate.js';
import { TRL_ARGS, modelWithRevision, resolveTrlArgs } from '../dpo/trl-args.js';
import { attnImplementationNote } from '../dpo/attn-implementation.js';
import { resolveModelDir } from '../io/model-source.js';
import { existsSync, readFileSync } from 'node:fs';
import { describeStorage, weightStorageFor } from '../quant/options.js';
import { trainsEmbeddings, type StorageSpec } from '../quant/load-stored.js';
import { join } from 'node:path';
import { iterativeTrainCommand, wantsIterative } from './train-iterative.js';
import { FrozenEmbedding } from '../nn/frozen-embedding.js';
import { numParameters } from '../models/causal-lm.js';

export const TRAIN_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'model directory or Hugging Face model id (resolved offline from the HF cache)'),
  spec('dataset_name', 'string?', null, 'data file (.json, .jsonl, .parquet), dataset folder, or Hugging Face dataset id (resolved offline from the HF cache)'),
  spec('dataset_config', 'string?', null, 'configuration (subset) of the data set, as its README\'s configs: declare them'),
  spec('dataset_revision', 'string', 'main', 'branch, tag or commit of a Hub data set in the HF cache (not a TRL 1.13 argument)'),
  spec('dataset_train_split', 'string', 'train', 'split of a dataset directory to train on'),
  spec('dataset_test_split', 'strings', 'test', 'split of a dataset directory to evaluate on (with --eval_strategy steps|epoch; a plain file is used whole); several (test,validation, or a YAML list) are evaluated apart, logged as eval_<split>_loss'),
  spec('datasets', 'any', [], 'TRL\'s dataset mixture (a YAML list of {path, name, data_dir, data_files, split, columns, fraction}); replaces --dataset_name'),
  spec('test_split_size', 'float?', null, 'with datasets: split off this fraction (or row count) as the test split'),
  ...TRAINING_OPTIONS,
  spec('config', 'string?', null, 'YAML file with any of these options (flags override it)'),
  spec('quiet', 'bool', false, 'no progress output'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
  // TRL's other arguments (trl-args.ts): accepted without effect (a warning), refused if not TRL's default, or mapped.
  ...TRL_ARGS.map((t) => spec(t.snake, t.type, t.default, `(TRL) ${t.kind === 'ignored' ? 'no effect: ' : t.kind === 'refused' ? 'only TRL\'s default: ' : ''}${t.why}`)),
];

export async function trainCommand(argv: string[]): Promise<void> {
  // --judge / --prompts / --iterations: iterative (online) DPO, its own options (train-iterative.ts).
  if (wantsIterative(argv)) return iterativeTrainCommand(argv);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('train', 'align a causal LM on preference pairs with DPO (TRL-compatible flags)', TRAIN_SPECS));
    return;
  }
  const configNotes: string[] = [];
  const o = resolveOptions(argv, TRAIN_SPECS, 'train', { tolerateUnknown: (m) => configNotes.push(m) });
  if (!o.model_name_or_path) throw new DpoError('dpo train: --model_name_or_path is required (a model directory or an HF model id in your cache)');
  const groups = new Set(['training', 'dpo', 'data']);
  const cfg: Record<string, unknown> = {};
  for (const s of TRAINING_OPTIONS) if (groups.has(s.group) && o[s.snake] !== undefined) cfg[s.snake] = o[s.snake];
  // ScriptArguments / ModelConfig / DatasetMixtureConfig fields here; DPOConfig's own go to DPOConfig (its notes print as warnings).
  const trlOther: Record<string, unknown> = {};
  for (const t of TRL_ARGS) if (o[t.snake] !== undefined) (t.cls === 'config' ? cfg : trlOther)[t.snake] = o[t.snake];
  const modelPath = modelWithRevision(o.model_name_or_path as string, o.model_revision as string, existsSync(o.model_name_or_path as string));
  const trl = resolveTrlArgs(trlOther, 'dpo train', () => checkpointDtype(modelPath));
  if (trl.set.bf16 && cfg.bf16 === false && explicitlyFalse(argv, 'bf16')) throw new DpoError('dpo train: --dtype asks for bf16 compute but --bf16 false turns it off; pass only one of them');
  Object.assign(cfg, trl.set);
  const args = new DPOConfig(cfg, 'dpo train');
  if (o.use_peft && o.adapter_name_or_path) throw new DpoError('dpo train: --use_peft creates a new adapter and --adapter_name_or_path continues one; pass only one of them');
  // Weights and optimizer state must fit before anything is built (activations are checked once the data is tokenized).
  const lora = (adapter: boolean) => (o.use_peft || adapter ? { r: o.lora_r as number, targetModules: (o.lora_target_modules as string[] | null) ?? null } : null);
  // The frozen base linears' storage (load_in_4bit / load_in_8bit / dtype under LoRA): quant/options.ts.
  const storage = (adapter: boolean) => {
    const spec = weightStorageFor(trlOther, { lora: !!o.use_peft || adapter, checkpointDtype: () => checkpointDtype(modelPath) });
    // A new adapter that trains the embedding or lm_head keeps them float32 (a continued one: loadPolicy reads its config).
    const peft = spec && o.use_peft ? loraConfigFromOptions(o) : null;
    return spec && peft && trainsEmbeddings(peft.targetModules, peft.modulesToSave) ? { ...spec, trainedEmbeddings: true } : spec;
  };
  let storageSpec: StorageSpec | null = null;
  const policy = loadPolicy(modelPath, (o.adapter_name_or_path as string | null) ?? null, (arch, adapter) => assertRunFits(estimateTraining(arch, args, { lora: lora(adapter), seqLen: 0, storage: storage(adapter) })), (adapter) => (storageSpec = storage(adapter)));
  // As TRL's script: the datasets mixture or dataset_name; the test split(s) read only when evaluation is on.
  const data = await scriptDatasets(o as unknown as ScriptDataArgs, args.evalStrategy !== 'no', args.seed);
  const train = data.train;
  const evalDs = data.eval;
  const peftConfig = o.use_peft ? loraConfigFromOptions(o) : null;
  const quiet = o.quiet as boolean;
  const log = (m: string) => {
    if (!quiet) console.log(m);
  };
  log(`model ${policy.base}${policy.adapter ? ` + adapter ${policy.adapter}` : ''} (${policy.model.arch.modelType}, ${(numParameters(policy.model) / 1e6).toFixed(1)}M parameters)`);
  const evalCount = evalDs instanceof Dataset ? `, ${evalDs.length} eval pairs` : evalDs ? `, eval pairs: ${Object.entries(evalDs).map(([k, d]) => `${k} ${d.length}`).join(', ')}` : '';
  log(`data ${data.label}: ${train.length} training pairs${evalCount}`);
  log(describeCompute());
  if (args.bf16) log(describeBf16());
  const frozenEmbedding = policy.model.namedModules().find(([, m]) => m instanceof FrozenEmbedding)?.[1] as FrozenEmbedding | undefined;
  log(describeStorage(storageSpec, frozenEmbedding?._w.kind ?? null));
  log(`precision: ${args.bf16 ? 'bf16 compute, f32 master weights' : 'float32'}; gradient_checkpointing ${args.gradientCheckpointing ? 'on' : 'off'}; logging_steps ${args.loggingSteps}`);
  // Attention soft-cap (Gemma 2): sdpa in transformers drops it, dpo applies it (dpo/attn-implementation.ts); that note replaces the generic one.
  const capNote = attnImplementationNote(policy.model.arch.attnSoftcap, (trlOther.attn_implementation as string | null | undefined) ?? null);
  const trlNotes = capNote ? [...trl.notes.filter((n) => !n.startsWith('attn_implementation ')), capNote] : trl.notes;
  for (const n of [...configNotes, ...trlNotes, ...data.notes]) log(`warning: ${n}`);
  const { trainer, output, reportPath } = await runTraining(
    {
      model: policy.model, args, trainDataset: train, evalDataset: evalDs, processingClass: policy.tokenizer, peftConfig,
      modelNameOrPath: policy.base, warn: (m) => log(`warning: ${m}`),
    },
    { title: `DPO: ${policy.base} on ${data.label}`, settings: { model_name_or_path: policy.base, dataset_name: o.dataset_name }, quiet, resumeFromCheckpoint: args.resumeFromCheckpoint },
  );
  const last = [...trainer.state.log_history].reverse().find((e) => 'rewards/accuracies' in e && 'loss' in e);
  log(`done: ${output.globalStep} steps, train_loss ${output.trainingLoss.toFixed(4)}${last ? `, rewards/accuracies ${last['rewards/accuracies'].toFixed(3)}, rewards/margins ${last['rewards/margins'].toFixed(4)}` : ''}`);
  log(`saved ${trainer.args.outputDir} (${peftConfig || policy.adapter ? 'adapter_model.safetensors' : 'model.safetensors'}, trainer_state.json, metrics.jsonl)`);
  log(`report: ${reportPath}`);
}

/**
 * The eval set(s) of --dataset_test_split: one split, or a comma list of splits evaluated apart (as
 * TRL's eval_dataset dict: eval_<split>_loss, ...).
 */
/** config.json's dtype (or torch_dtype) of the model, for --dtype auto; null when unknown. */
function checkpointDtype(nameOrPath: string): string | null {
  try {
    const c = JSON.parse(readFileSync(join(resolveModelDir(nameOrPath), 'config.json'), 'utf8')) as Record<string, unknown>;
    const d = c.dtype ?? c.torch_dtype;
    return typeof d === 'string' ? d : null;
  } catch {
    return null;
  }
}

/** Whether the command line itself set `name` false (--no_name, --name false). */
function explicitlyFalse(argv: readonly string[], name: string): boolean {
  return argv.some((a, i) => a === `--no_${name}` || a === `--${name}=false` || a === `--${name}=False` || (a === `--${name}` && /^(false|False|0)$/.test(argv[i + 1] ?? '')));
}
