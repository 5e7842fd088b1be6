/**
 * Every training option in one table: TRL's snake_case name (CLI flag, YAML key, TRL's field), the
 * camelCase name of the library API, its type, default (DPOConfig 1.13 / TrainingArguments 5.17) and
 * help. The config classes, the CLI parser and `--help` all read this table.
 */

/** 'dict': a JSON object (a YAML mapping, or a JSON string on the command line, as transformers' CLI takes it). */
/** 'any': taken as given (a YAML value, or JSON on the command line); only for TRL arguments that are refused unless default. */
export type OptionType = 'int' | 'float' | 'bool' | 'string' | 'strings' | 'floats' | 'dict' | 'any' | 'int?' | 'float?' | 'string?';

export interface OptionSpec {
  snake: string;
  camel: string;
  type: OptionType;
  default: unknown;
  help: string;
  /** Allowed values for string options. */
  choices?: readonly string[];
  group: 'dpo' | 'training' | 'lora' | 'model' | 'data';
}

/** The loss types and f-divergences come from the loss table itself (losses.ts). */
export { LOSS_TYPE_NAMES as LOSS_TYPES } from './losses.js';
import { F_DIVERGENCE_TYPES, LOSS_TYPE_NAMES } from './losses.js';

import { LR_SCHEDULER_TYPES } from '../optim/schedule.js';

/** transformers' step-based schedules (get_scheduler). */
export const SCHEDULERS = LR_SCHEDULER_TYPES;

const o = (snake: string, type: OptionType, def: unknown, group: OptionSpec['group'], help: string, choices?: readonly string[]): OptionSpec => ({
  snake,
  camel: snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
  type,
  default: def,
  help,
  group,
  choices,
});

export const TRAINING_OPTIONS: readonly OptionSpec[] = [
  // TrainingArguments (transformers 5.17 defaults; learning_rate is DPOConfig's; logging_steps TRL's _BaseConfig)
  o('output_dir', 'string', 'dpo_output', 'training', 'where checkpoints, the final model/adapter, metrics.jsonl and report.html go'),
  o('per_device_train_batch_size', 'int', 8, 'training', 'preference pairs per micro-batch'),
  o('per_device_eval_batch_size', 'int', 8, 'training', 'preference pairs per evaluation batch'),
  o('gradient_accumulation_steps', 'int', 1, 'training', 'micro-batches per optimizer step'),
  o('learning_rate', 'float', 1e-6, 'training', 'peak learning rate of AdamW'),
  o('weight_decay', 'float', 0.0, 'training', 'AdamW decoupled weight decay'),
  o('adam_beta1', 'float', 0.9, 'training', 'AdamW beta1'),
  o('adam_beta2', 'float', 0.999, 'training', 'AdamW beta2'),
  o('adam_epsilon', 'float', 1e-8, 'training', 'AdamW epsilon'),
  o('max_grad_norm', 'float', 1.0, 'training', 'clip the global gradient L2 norm to this (0 = no clipping)'),
  o('num_train_epochs', 'float', 3.0, 'training', 'epochs over the training set (ignored when max_steps > 0)'),
  o('max_steps', 'int', -1, 'training', 'total optimizer steps; overrides num_train_epochs when > 0'),
  o('lr_scheduler_type', 'string', 'linear', 'training', 'learning-rate schedule', SCHEDULERS),
  o('lr_scheduler_kwargs', 'dict', {}, 'training', 'extra arguments of the schedule, e.g. \'{"min_lr_rate": 0.1}\' for cosine_with_min_lr'),
  o('warmup_steps', 'float', 0, 'training', 'linear warmup steps (a value < 1 is a ratio of the total steps, as in transformers 5)'),
  o('warmup_ratio', 'float?', null, 'training', 'warmup as a fraction of the total steps (alias of warmup_steps < 1)'),
  o('logging_steps', 'float', 10, 'training', 'log metrics every N optimizer steps (< 1: a ratio of the total)'),
  o('logging_first_step', 'bool', false, 'training', 'also log after the first step'),
  o('report_to', 'strings', [], 'training', 'trackers, as transformers: tensorboard, all (every one available here: tensorboard) or none (the default)'),
  o('logging_dir', 'string?', null, 'training', 'TensorBoard log directory (transformers 4\'s argument; $TENSORBOARD_LOGGING_DIR wins; default <output_dir>/runs/<Mondd_HH-MM-SS>_<hostname>)'),
  o('save_steps', 'float', 500, 'training', 'write output_dir/checkpoint-N every N steps (< 1: a ratio of the total)'),
  o('save_strategy', 'string', 'steps', 'training', 'when to save checkpoints (best: after each evaluation that improves metric_for_best_model)', ['steps', 'epoch', 'best', 'no']),
  o('save_total_limit', 'int?', null, 'training', 'keep at most this many checkpoints (oldest deleted first)'),
  o('eval_strategy', 'string', 'no', 'training', 'when to evaluate on the eval set', ['no', 'steps', 'epoch']),
  o('eval_steps', 'float?', null, 'training', 'evaluate every N steps (defaults to logging_steps when eval_strategy=steps)'),
  o('eval_on_start', 'bool', false, 'training', 'also evaluate once before the first step'),
  o('load_best_model_at_end', 'bool', false, 'training', 'end with the weights of the best checkpoint (by metric_for_best_model) as the final model'),
  o('metric_for_best_model', 'string?', null, 'training', 'eval metric that picks the best checkpoint, e.g. loss or rewards/accuracies (eval_ prefix optional; default loss with load_best_model_at_end)'),
  o('greater_is_better', 'bool', null, 'training', 'whether a larger metric_for_best_model is better (default: false for names ending in loss, else true)'),
  o('seed', 'int', 42, 'training', 'seed for data shuffling, LoRA init and dropout'),
  o('resume_from_checkpoint', 'string?', null, 'training', 'a checkpoint directory to resume from (or "latest" in output_dir)'),
  o('bf16', 'bool', true, 'training', 'matmuls on bf16 operands (the CPU\'s bf16 units) with f32 accumulation, master weights and optimizer state; on by default as in TRL (--no_bf16: exact float32)'),
  o('gradient_checkpointing', 'bool', true, 'training', 'recompute activations in backward to save memory'),
  o('dataloader_drop_last', 'bool', false, 'training', 'drop the last incomplete batch'),
  o('num_threads', 'int?', null, 'training', 'compute threads (default: all cores)'),
  // DPOConfig (TRL 1.13 defaults)
  o('beta', 'float', 0.1, 'dpo', 'KL regularisation strength β'),
  o('loss_type', 'strings', ['sigmoid'], 'dpo', 'one or several DPO loss types', LOSS_TYPE_NAMES),
  o('loss_weights', 'floats', null, 'dpo', 'weight of each loss_type when several are combined'),
  o('label_smoothing', 'float', 0.0, 'dpo', 'label smoothing (robust, exo_pair, aot losses)'),
  o('f_divergence_type', 'string', 'reverse_kl', 'dpo', 'f-divergence of the implicit reward', F_DIVERGENCE_TYPES),
  o('f_alpha_divergence_coef', 'float', 0.5, 'dpo', 'α of the alpha divergence'),
  o('ld_alpha', 'float?', null, 'dpo', 'LD-DPO weight of the verbose tail of the longer completion'),
  o('use_weighting', 'bool', false, 'dpo', 'WPO weighting of the loss by the policy probability of each completion'),
  o('discopop_tau', 'float', 0.05, 'dpo', 'temperature of the discopop loss'),
  o('disable_dropout', 'bool', true, 'dpo', 'turn off dropout in the model'),
  o('precompute_ref_log_probs', 'bool', false, 'dpo', 'compute reference log-probs once before training (cached on disk)'),
  o('precompute_ref_batch_size', 'int?', null, 'dpo', 'accepted as in TRL, where it only sets speed; the reference pass runs in the training / eval batches, so step 1 matches bit for bit'),
  o('sync_ref_model', 'bool', false, 'dpo', 'TR-DPO: mix the policy into the reference every ref_model_sync_steps'),
  o('ref_model_mixup_alpha', 'float', 0.6, 'dpo', 'TR-DPO mixup weight of the policy'),
  o('ref_model_sync_steps', 'int', 512, 'dpo', 'TR-DPO sync period in steps'),
  o('max_length', 'int?', 1024, 'data', 'truncate prompt+completion to this many tokens'),
  o('truncation_mode', 'string', 'keep_start', 'data', 'which end to keep when truncating', ['keep_start', 'keep_end']),
  o('pad_to_multiple_of', 'int?', null, 'data', 'pad batches to a multiple of this length'),
  o('padding_free', 'bool', false, 'data', 'TRL\'s flag, accepted; batches are packed back to back here either way (no compute on padding; attention kept per sequence; the padded batch\'s metrics)'),
  o('share_prompt', 'bool', true, 'data', 'pack the tokens a chosen and a rejected completion share (the prompt) once, both attending them (same log-probs, ~20% fewer tokens); off while dropout is active, which would share dropout masks (TRL\'s disable_dropout, on by default, turns LoRA dropout off too)'),
  o('skip_invalid_rows', 'bool', false, 'data', 'drop invalid data rows (reported) instead of refusing to start'),
  o('dataset_num_proc', 'int?', null, 'data', 'threads that tokenise the data (default: one per CPU core for 2,000+ rows; the result is the same)'),
  // LoRA (PEFT LoraConfig; TRL ModelConfig names on the CLI)
  o('use_peft', 'bool', false, 'lora', 'train a LoRA adapter instead of all weights'),
  o('lora_r', 'int', 16, 'lora', 'LoRA rank r'),
  o('lora_alpha', 'float', 32, 'lora', 'LoRA alpha (scaling = alpha / r)'),
  o('lora_dropout', 'float', 0.05, 'lora', 'dropout on the LoRA input'),
  o('lora_target_modules', 'strings', null, 'lora', 'module names (2 or more: suffix match), one value = a full-match regex on the module name (as TRL passes it to PEFT), or all-linear (default: PEFT\'s per-architecture targets)'),
  o('use_rslora', 'bool', false, 'lora', 'rank-stabilised scaling alpha / sqrt(r)'),
  o('use_dora', 'bool', false, 'lora', 'DoRA: a trained magnitude per output feature on the direction of W + ΔW (PEFT use_dora)'),
  o('lora_modules_to_save', 'strings', null, 'lora', 'modules trained in full next to the adapter, e.g. lm_head embed_tokens (PEFT modules_to_save)'),
  o('peft_config', 'dict', {}, 'lora', 'more PEFT LoraConfig keys, over the lora_* flags: init_lora_weights (true/false/gaussian/pissa/olora), rank_pattern, alpha_pattern, layers_to_transform, layers_pattern, exclude_modules, ...'),
  o('adapter_name_or_path', 'string?', null, 'lora', 'an existing PEFT adapter to continue training'),
];

export const OPTIONS_BY_SNAKE = new Map(TRAINING_OPTIONS.map((s) => [s.snake, s]));
export const OPTIONS_BY_CAMEL = new Map(TRAINING_OPTIONS.map((s) => [s.camel, s]));
