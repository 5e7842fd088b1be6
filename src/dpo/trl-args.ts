/**
 * Every argument TRL 1.13's `trl dpo` accepts (ScriptArguments, DPOConfig with TrainingArguments,
 * ModelConfig, DatasetMixtureConfig) that is not one of our own options, classified in one table:
 *
 * - `ignored`: cannot mean anything here (one process on one CPU, no network, no GPU kernels); any
 *   value is accepted, and a value other than TRL's default prints one warning line saying why it
 *   has no effect.
 * - `refused`: would change the numbers and is not implemented; TRL's default is accepted, any
 *   other value stops the run with a one-line error.
 * - `special`: a value is checked and mapped (dtype, optim, attn_implementation, ...), see
 *   `resolveTrlArgs`.
 *
 * The options we implement are in options.ts (TRAINING_OPTIONS) and cli/train.ts (TRAIN_SPECS);
 * test/cli/trl-args.test.ts checks that these tables together cover every field of TRL's parser
 * (test/fixtures/trl-args/args.json, from tools/fixtures/make_trl_args.py) and that the defaults agree,
 * except the deliberate differences in DEFAULT_DIFFERENCES.
 */
import { DpoError } from '../errors.js';
import type { OptionType } from './options.js';

export type TrlArgKind = 'ignored' | 'refused' | 'special';

/** Which of TRL's dataclasses the field belongs to: 'config' = DPOConfig (with TrainingArguments). */
export type TrlArgClass = 'script' | 'config' | 'model' | 'mixture';

export interface TrlArg {
  snake: string;
  cls: TrlArgClass;
  type: OptionType;
  /** TRL 1.13's default (the dataclass field's). */
  default: unknown;
  kind: TrlArgKind;
  /** Why it has no effect / why it is refused (ends the warning or error line). */
  why: string;
}

const NO_DIST = 'dpo train is one process on one machine';
const NO_NET = 'dpo train uploads nothing (no network use)';
const NO_GPU = 'no GPU here: the CPU kernels are native oneDNN';
const DATA_LOADER = 'batches are collated in-process, there are no data-loader workers';
const LOG_ONLY = 'progress, metrics.jsonl and report.html are always written';

const a = (snake: string, cls: TrlArgClass, type: OptionType, def: unknown, kind: TrlArgKind, why: string): TrlArg => ({ snake, cls, type, default: def, kind, why });
const ig = (snake: string, type: OptionType, def: unknown, why: string, cls: TrlArgClass = 'config') => a(snake, cls, type, def, 'ignored', why);
const rf = (snake: string, type: OptionType, def: unknown, why: string, cls: TrlArgClass = 'config') => a(snake, cls, type, def, 'refused', why);
const sp = (snake: string, type: OptionType, def: unknown, why: string, cls: TrlArgClass = 'config') => a(snake, cls, type, def, 'special', why);

/** Supported `optim` values: both are torch.optim.AdamW (the fused CPU kernel computes the same update, test/fixtures/optim). */
export const SUPPORTED_OPTIMS = ['adamw_torch', 'adamw_torch_fused'] as const;
/** Attention kernels of transformers: all compute the same attention (to rounding), so each is accepted. */
export const ATTN_IMPLEMENTATIONS = ['eager', 'sdpa', 'flash_attention_2', 'flash_attention_3', 'flex_attention', 'paged_attention', 'kernels-community/flash-attn', 'kernels-community/vllm-flash-attn3'] as const;
export const DTYPES = ['float32', 'bfloat16', 'auto'] as const;

export const TRL_ARGS: readonly TrlArg[] = [
  // ScriptArguments
  rf('dataset_streaming', 'bool', false, 'streaming is not supported (TRL then trains on the rows in file order, unshuffled); dpo train reads the data set from disk (large sets are fine) and shuffles as TRL does without streaming', 'script'),
  // dataset_config, dataset_revision, datasets and test_split_size are implemented (cli/train.ts TRAIN_SPECS, data/script-data.ts);
  // report_to and logging_dir too (options.ts, report/trackers.ts).
  ig('ignore_bias_buffers', 'bool', false, `a DDP workaround; ${NO_DIST}`, 'script'),
  // accelerate launch arguments: `trl dpo` passes what its parser does not know (CLI or YAML) to `accelerate launch` (trl/cli/commands/training.py).
  rf('num_processes', 'int', 1, `several data-parallel processes multiply the global batch; ${NO_DIST}: keep the global batch with --gradient_accumulation_steps, or write a multi-GPU TRL job with dpo export-trl --num_processes N`, 'script'),
  rf('accelerate_config', 'string?', null, `accelerate launch configurations (multi-GPU, FSDP, DeepSpeed) are not run here, ${NO_DIST}; dpo export-trl --distributed fsdp2|zero3 writes one for trl dpo`, 'script'),
  // DatasetMixtureConfig
  rf('streaming', 'bool', false, 'streaming is not supported (TRL then trains on the rows in file order, unshuffled); dpo train reads the data sets from disk', 'mixture'),
  // ModelConfig
  sp('model_revision', 'string', 'main', 'the branch, tag or commit of a Hugging Face model id, resolved in the HF cache (as model_id@revision)', 'model'),
  sp('dtype', 'string?', 'float32', 'weights stay float32; bfloat16 (or auto on a bf16 checkpoint) turns --bf16 compute on', 'model'),
  // Not a TRL 1.13 field (its parser refuses it): transformers 4's name of dtype, accepted as that.
  sp('torch_dtype', 'string?', null, 'the old name of --dtype', 'model'),
  sp('attn_implementation', 'string?', null, 'every kernel computes the same attention; ours is native', 'model'),
  rf('lora_target_parameters', 'strings', null, 'LoRA on raw parameters (MoE experts) is not supported; use --lora_target_modules', 'model'),
  sp('lora_task_type', 'string', 'CAUSAL_LM', 'only causal language models are trained', 'model'),
  sp('load_in_8bit', 'bool', false, 'the LoRA base in LLM.int8 format (quant/options.ts)', 'model'),
  sp('load_in_4bit', 'bool', false, 'the LoRA base in bitsandbytes 4-bit format (quant/options.ts)', 'model'),
  sp('bnb_4bit_quant_type', 'string', 'nf4', 'nf4 or fp4, with load_in_4bit', 'model'),
  sp('use_bnb_nested_quant', 'bool', false, 'double quantization of the 4-bit absmax, with load_in_4bit', 'model'),
  ig('bnb_4bit_quant_storage', 'string?', null, 'only used with load_in_4bit', 'model'),
  // DPOConfig's own fields
  rf('model_init_kwargs', 'dict', null, 'extra from_pretrained arguments are not supported; use --dtype / --attn_implementation'),
  ig('trust_remote_code', 'bool', false, 'no remote code runs here; only the built-in architectures load'),
  ig('router_aux_loss_coef', 'float', 0.001, 'only mixture-of-experts models use it, and none are supported'),
  rf('pad_token', 'string?', null, 'a custom pad token is not supported; the tokenizer\'s pad (or eos) token is used'),
  ig('activation_offloading', 'bool', false, 'activations stay in memory (CPU); use --gradient_checkpointing to save memory'),
  // TrainingArguments (and TRL's _BaseConfig)
  sp('optim', 'string', 'adamw_torch_fused', `the optimizer is AdamW (${SUPPORTED_OPTIMS.join(', ')})`),
  rf('optim_args', 'string?', null, 'optimizer arguments are not supported; AdamW takes --adam_beta1/--adam_beta2/--adam_epsilon/--weight_decay'),
  rf('optim_target_modules', 'strings', null, 'only used by GaLore / APOLLO optimizers, which are not supported'),
  ig('average_tokens_across_devices', 'bool', true, NO_DIST),
  ig('label_smoothing_factor', 'float', 0.0, 'the DPO loss does not use it (neither does TRL\'s DPOTrainer); DPO\'s own is --label_smoothing'),
  rf('fp16', 'bool', false, 'fp16 mixed precision is not implemented; use --bf16'),
  rf('bf16_full_eval', 'bool', false, 'evaluation runs in the training precision; pass --bf16 for bf16 compute'),
  rf('fp16_full_eval', 'bool', false, 'fp16 evaluation is not implemented'),
  ig('tf32', 'bool', null, NO_GPU),
  ig('gradient_checkpointing_kwargs', 'dict', null, 'our checkpointing takes no options'),
  ig('torch_compile', 'bool', false, NO_GPU),
  ig('torch_compile_backend', 'string?', null, NO_GPU),
  ig('torch_compile_mode', 'string?', null, NO_GPU),
  ig('use_liger_kernel', 'bool', false, `Liger kernels compute the same loss on GPUs; ${NO_GPU}`),
  ig('liger_kernel_config', 'dict', null, NO_GPU),
  ig('use_cache', 'bool', false, 'training never uses a KV cache'),
  rf('neftune_noise_alpha', 'float?', null, 'NEFTune embedding noise is not implemented'),
  ig('torch_empty_cache_steps', 'int?', null, NO_GPU),
  ig('auto_find_batch_size', 'bool', false, 'memory is checked before the run starts; lower --per_device_train_batch_size if it does not fit'),
  sp('logging_strategy', 'string', 'steps', 'logging is every --logging_steps steps'),
  ig('log_on_each_node', 'bool', true, NO_DIST),
  ig('logging_nan_inf_filter', 'bool', true, 'a NaN or infinite loss stops the run (with a checkpoint) instead of being filtered'),
  ig('include_num_input_tokens_seen', 'string', 'no', 'token counts are not logged'),
  ig('log_level', 'string', 'passive', LOG_ONLY),
  ig('log_level_replica', 'string', 'warning', NO_DIST),
  ig('disable_tqdm', 'bool', null, 'use --quiet to turn progress output off'),
  ig('run_name', 'string?', null, 'only wandb / mlflow / trackio name runs, and they are not supported (TensorBoard uses logging_dir)'),
  ig('project', 'string', 'huggingface', 'only trackio uses it, which is not supported'),
  ig('trackio_space_id', 'string?', null, NO_NET),
  ig('trackio_bucket_id', 'string?', null, NO_NET),
  ig('trackio_static_space_id', 'string?', null, NO_NET),
  rf('eval_delay', 'float', 0, 'delaying the first evaluation is not implemented'),
  ig('prediction_loss_only', 'bool', false, 'evaluation logs the DPO metrics, there are no predictions'),
  ig('eval_do_concat_batches', 'bool', true, 'evaluation keeps no predictions'),
  ig('eval_use_gather_object', 'bool', false, NO_DIST),
  ig('eval_accumulation_steps', 'int?', null, 'evaluation keeps no predictions'),
  ig('include_for_metrics', 'strings', [], 'there is no compute_metrics'),
  ig('batch_eval_metrics', 'bool', false, 'there is no compute_metrics'),
  ig('save_only_model', 'bool', false, 'checkpoints always include the optimizer state (so they resume)'),
  ig('save_on_each_node', 'bool', false, NO_DIST),
  ig('enable_jit_checkpoint', 'bool', false, 'a stop signal (SIGTERM, Ctrl-C) always saves a checkpoint'),
  ig('push_to_hub', 'bool', false, `${NO_NET}; upload output_dir with huggingface-cli upload`),
  ig('hub_token', 'string?', null, NO_NET),
  ig('hub_private_repo', 'bool', null, NO_NET),
  ig('hub_model_id', 'string?', null, NO_NET),
  ig('hub_strategy', 'string', 'every_save', NO_NET),
  ig('hub_always_push', 'bool', false, NO_NET),
  ig('hub_revision', 'string?', null, NO_NET),
  rf('ignore_data_skip', 'bool', false, 'a resumed run always skips the batches already seen (so it continues the same data order)'),
  ig('restore_callback_states_from_checkpoint', 'bool', false, 'there are no callbacks with state'),
  ig('full_determinism', 'bool', false, 'runs are deterministic already (same seed, same numbers)'),
  rf('data_seed', 'int?', null, 'a separate data-order seed is not implemented; --seed sets both'),
  ig('use_cpu', 'bool', false, 'dpo train always runs on the CPU'),
  ig('accelerator_config', 'dict', null, NO_DIST),
  ig('parallelism_config', 'dict', null, NO_DIST),
  ig('dataloader_num_workers', 'int', 0, DATA_LOADER),
  ig('dataloader_pin_memory', 'bool', true, NO_GPU),
  ig('dataloader_persistent_workers', 'bool', false, DATA_LOADER),
  ig('dataloader_prefetch_factor', 'int?', null, DATA_LOADER),
  ig('dataloader_multiprocessing_context', 'string?', null, DATA_LOADER),
  ig('dataloader_in_order', 'bool', true, DATA_LOADER),
  ig('remove_unused_columns', 'bool', true, 'dpo train reads only the prompt / chosen / rejected columns (and images are not supported)'),
  ig('label_names', 'strings', null, 'the DPO loss has no labels column'),
  sp('train_sampling_strategy', 'string', 'random', 'batches are shuffled with --seed as in TRL'),
  ig('length_column_name', 'string', 'length', 'only used by the group_by_length sampler, which is not supported'),
  ig('ddp_find_unused_parameters', 'bool', null, NO_DIST),
  ig('ddp_bucket_cap_mb', 'int?', null, NO_DIST),
  ig('ddp_broadcast_buffers', 'bool', null, NO_DIST),
  ig('ddp_static_graph', 'bool', null, NO_DIST),
  ig('ddp_backend', 'string?', null, NO_DIST),
  ig('ddp_timeout', 'int', 1800, NO_DIST),
  ig('fsdp', 'string?', null, NO_DIST),
  ig('fsdp_config', 'dict', null, NO_DIST),
  ig('deepspeed', 'string?', null, NO_DIST),
  ig('skip_memory_metrics', 'bool', true, 'memory metrics are not logged'),
  ig('do_train', 'bool', false, 'TRL\'s script ignores it too: dpo train always trains'),
  ig('do_eval', 'bool', false, 'TRL\'s script ignores it too: evaluation follows --eval_strategy'),
  ig('do_predict', 'bool', false, 'TRL\'s script ignores it too'),
  ig('local_rank', 'int', -1, NO_DIST),
];

export const TRL_ARGS_BY_SNAKE = new Map(TRL_ARGS.map((x) => [x.snake, x]));
/** The library spelling (DPOConfig({ reportTo: 'none' })). */
export const TRL_ARGS_BY_CAMEL = new Map(TRL_ARGS.map((x) => [x.snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), x]));

/**
 * TRL fields whose name we already use for an option of our own (not a TRL_ARGS row): `debug`
 * (TrainingArguments: distributed debug modes; ours: stack traces on errors).
 */
export const OWN_MEANING: Readonly<Record<string, string>> = {
  debug: 'dpo train --debug prints stack traces on errors (TrainingArguments\' debug modes are for torch.distributed)',
};

/**
 * Defaults of ours that differ from TRL 1.13's on purpose (checked by test/cli/trl-args.test.ts).
 * Key: TRL's field name; value: why.
 */
export const DEFAULT_DIFFERENCES: Readonly<Record<string, string>> = {
  output_dir: 'TRL requires an output_dir (its default None becomes "trainer_output"); ours is dpo_output',
  lr_scheduler_kwargs: 'TRL\'s None and our {} mean the same (no extra arguments)',
};

const fmt = (v: unknown) => (Array.isArray(v) ? v.join(',') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

function isDefault(arg: TrlArg, v: unknown): boolean {
  if (v === undefined) return true;
  const d = arg.default;
  if (arg.type === 'strings' || arg.type === 'floats') {
    const list = (v as unknown[] | null) ?? [];
    const dl = d === null ? [] : Array.isArray(d) ? d : [d];
    return list.length === dl.length && list.every((x, i) => x === dl[i]);
  }
  if (arg.type === 'any') return v === null || (Array.isArray(v) && v.length === 0);
  if (arg.type === 'dict') return v === null || (typeof v === 'object' && Object.keys(v as object).length === 0);
  return v === d;
}

/** What resolveTrlArgs decided: settings for our own options (e.g. bf16 from dtype), and notes to print. */
export interface TrlArgsResolution {
  /** Our own options the TRL arguments set (snake_case), e.g. { bf16: true } from --dtype bfloat16. */
  set: Record<string, unknown>;
  /** One line each: what was accepted without effect, or mapped. */
  notes: string[];
}

/**
 * Checks TRL arguments given (snake_case → value; absent = TRL's default): refused ones with a value
 * other than TRL's default throw a one-line DpoError; ignored ones with such a value give a note;
 * the special ones are validated and mapped. `checkpointDtype` (config.json's dtype) resolves
 * `dtype: auto`.
 *
 * @example resolveTrlArgs({ dtype: 'bfloat16', push_to_hub: true }, 'dpo train')
 *   // → { set: { bf16: true }, notes: ['--dtype bfloat16: ...', '--push_to_hub true has no effect: ...'] }
 */
export function resolveTrlArgs(given: Record<string, unknown>, where: string, checkpointDtype: () => string | null = () => null): TrlArgsResolution {
  const set: Record<string, unknown> = {};
  const notes: string[] = [];
  for (const [k, v] of Object.entries(given)) {
    const arg = TRL_ARGS_BY_SNAKE.get(k);
    if (!arg || isDefault(arg, v)) continue;
    const shown = `${k} ${fmt(v)}`;
    if (arg.kind === 'ignored') notes.push(`${shown} has no effect: ${arg.why}`);
    else if (arg.kind === 'refused') throw new DpoError(`${where}: ${shown} is not supported (${arg.why}); remove it or set it to ${fmt(arg.default ?? 'None')}`);
    else special(arg, v, where, set, notes, checkpointDtype);
  }
  return { set, notes };
}

function special(arg: TrlArg, v: unknown, where: string, set: Record<string, unknown>, notes: string[], checkpointDtype: () => string | null): void {
  const k = arg.snake;
  switch (k) {
    case 'optim':
      if (!(SUPPORTED_OPTIMS as readonly string[]).includes(v as string)) {
        throw new DpoError(`${where}: optim "${fmt(v)}" is not supported; supported: ${SUPPORTED_OPTIMS.join(', ')} (the same AdamW update)`);
      }
      return;
    case 'dtype': {
      const d = v === null ? 'float32' : (v as string);
      if (!(DTYPES as readonly string[]).includes(d)) throw new DpoError(`${where}: dtype "${d}" is not supported; supported: ${DTYPES.join(', ')} (float16 compute is not implemented)`);
      if (d === 'float32') return;
      const ck = d === 'auto' ? checkpointDtype() : d;
      const resolved = ck ?? 'float32';
      if (resolved === 'float32') {
        notes.push(`dtype auto: the checkpoint ${ck ? 'is float32' : 'names no dtype'}; float32 weights (compute as --bf16 says)`);
        return;
      }
      if (resolved === 'float16' || resolved === 'bfloat16') {
        set.bf16 = true;
        notes.push(`dtype ${d}${d === 'auto' ? ` (checkpoint: ${resolved})` : ''}: training with --bf16 compute (bf16 matmul operands, f32 master weights and accumulation)`);
        return;
      }
      throw new DpoError(`${where}: dtype auto: the checkpoint's dtype ${resolved} is not supported; pass --dtype float32 or bfloat16`);
    }
    case 'torch_dtype':
      notes.push(`torch_dtype is the old name of dtype (TRL 1.13 takes --dtype); read as --dtype ${fmt(v)}`);
      special(TRL_ARGS_BY_SNAKE.get('dtype')!, v, where, set, notes, checkpointDtype);
      return;
    case 'load_in_4bit':
    case 'load_in_8bit':
    case 'bnb_4bit_quant_type':
    case 'use_bnb_nested_quant':
      // Checked and applied where the model is loaded (quant/options.ts weightStorageFor).
      return;
    case 'attn_implementation':
      if (!(ATTN_IMPLEMENTATIONS as readonly string[]).includes(v as string)) {
        throw new DpoError(`${where}: attn_implementation "${fmt(v)}" is not known; use one of ${ATTN_IMPLEMENTATIONS.slice(0, 5).join(', ')} (all compute the same attention here)`);
      }
      notes.push(`attn_implementation ${fmt(v)}: accepted; ${arg.why}`);
      return;
    case 'model_revision':
      // Applied where the model is resolved (dpo train: modelWithRevision); a value here is only checked.
      if (typeof v !== 'string' || v === '') throw new DpoError(`${where}: model_revision must be a branch, tag or commit of the model in your HF cache`);
      return;
    case 'lora_task_type':
      throw new DpoError(`${where}: lora_task_type ${fmt(v)} is not supported (${arg.why}); use CAUSAL_LM`);
    case 'logging_strategy':
      throw new DpoError(`${where}: logging_strategy ${fmt(v)} is not supported (${arg.why}); use steps with --logging_steps`);
    case 'train_sampling_strategy':
      throw new DpoError(`${where}: train_sampling_strategy ${fmt(v)} is not supported (${arg.why}); use random`);
  }
}

/**
 * `model_name_or_path` with TRL's `model_revision` applied: an HF id becomes `id@revision` (resolved
 * in the HF cache); a local directory has no revisions, so another revision than main is an error.
 *
 * @example modelWithRevision('HuggingFaceTB/SmolLM2-135M', 'v1', false) // 'HuggingFaceTB/SmolLM2-135M@v1'
 */
export function modelWithRevision(nameOrPath: string, revision: string, isLocal: boolean, where = 'dpo train'): string {
  if (revision === 'main') return nameOrPath;
  if (isLocal) throw new DpoError(`${where}: --model_revision ${revision}: ${nameOrPath} is a local directory, which has no revisions; drop --model_revision or pass the model's HF id`);
  if (nameOrPath.includes('@')) throw new DpoError(`${where}: --model_revision ${revision} and a revision in --model_name_or_path ${nameOrPath}; pass only one of them`);
  return `${nameOrPath}@${revision}`;
}
