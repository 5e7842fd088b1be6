/**
 * The way back to TRL: a `dpo train` run's settings as a TRL 1.13 recipe — the `trl dpo --config`
 * YAML (every TRL argument that differs from TRL's default, under TRL's names), an accelerate config
 * for several GPUs (FSDP2 or DeepSpeed ZeRO-3, as TRL's own trl/accelerate_configs/fsdp2.yaml and
 * zero3.yaml) and the launch command. The global batch is kept: on N processes the gradient
 * accumulation (else the per-device batch) is divided by N when it can be.
 *
 * @example
 * const r = trlRecipe(options, { numProcesses: 8, distributed: 'fsdp2', datasetName: 'data' });
 * r.yaml;        // model_name_or_path: ..., dataset_name: data, learning_rate: ...
 * r.launch;      // trl dpo --config dpo.yaml --accelerate_config accelerate_config.yaml
 */
import { stringify } from 'yaml';
import { TRAINING_OPTIONS } from './options.js';
import { TRL_ARGS } from './trl-args.js';

/** PyYAML (TRL's and accelerate's reader) is YAML 1.1: strings such as no / on / yes must be quoted. */
const YAML_11 = { version: '1.1' } as const;

export const DISTRIBUTED = ['fsdp2', 'zero3'] as const;
export type Distributed = (typeof DISTRIBUTED)[number];

/** Options of ours that TRL 1.13's parser does not have, and what the recipe does with each. */
const OURS_ONLY: Readonly<Record<string, string>> = {
  num_threads: 'CPU threads; GPUs need no such setting',
  share_prompt: 'packs a shared prompt once in our padding-free batches; the same numbers without it',
  skip_invalid_rows: 'TRL has no such option: it stops at an invalid row, so clean the data first',
  logging_dir: 'TRL 1.13 takes the TensorBoard directory from $TENSORBOARD_LOGGING_DIR (set in launch.sh)',
  adapter_name_or_path: '',
  dataset_revision: '',
  config: '',
  quiet: '',
  debug: '',
};
/** Keys the recipe sets itself (the exported data replaces the data-set arguments). */
const REPLACED = new Set(['dataset_name', 'dataset_config', 'dataset_revision', 'datasets', 'test_split_size', 'streaming', 'dataset_streaming', 'dataset_train_split', 'dataset_test_split', 'output_dir', 'model_name_or_path', 'torch_dtype', 'warmup_ratio']);

export interface RecipeOptions {
  numProcesses: number;
  distributed: Distributed;
  /** The exported data folder, relative to the job folder. */
  datasetName: string;
  /** The model as TRL should load it (an absolute local path or a Hub id). */
  modelNameOrPath: string;
  /** Whether the exported data has a test split (evaluation on). */
  hasTest: boolean;
}

export interface TrlRecipe {
  /** The keys of dpo.yaml, in TRL's names. */
  config: Record<string, unknown>;
  yaml: string;
  accelerateYaml: string;
  /** One line each: what changed on the way (batch split over processes, our-only options). */
  notes: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * `o`: the resolved `dpo train` options (TRAIN_SPECS keys, defaults filled in); `defaults`: each
 * option's default (so only what the run changed is written).
 */
export function trlRecipe(o: Record<string, unknown>, defaults: Record<string, unknown>, r: RecipeOptions): TrlRecipe {
  const notes: string[] = [];
  const config: Record<string, unknown> = { model_name_or_path: r.modelNameOrPath, dataset_name: r.datasetName, dataset_train_split: 'train' };
  if (r.hasTest) config.dataset_test_split = 'test';
  config.output_dir = 'trl_output';
  const trlKeys = new Set([...TRAINING_OPTIONS.map((s) => s.snake), ...TRL_ARGS.map((t) => t.snake), 'use_peft', 'lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules', 'use_rslora']);
  for (const [k, v] of Object.entries(o)) {
    if (REPLACED.has(k) || v === undefined || same(v, defaults[k])) continue;
    if (k in OURS_ONLY) {
      if (OURS_ONLY[k]) notes.push(`${k} ${JSON.stringify(v)} is not written (${OURS_ONLY[k]})`);
      continue;
    }
    if (trlKeys.has(k)) config[k] = v;
  }
  // TRL hands a list to PEFT as it is, and PEFT reads a single string as a regex / all-linear: one target goes as a string.
  if (Array.isArray(config.lora_target_modules) && config.lora_target_modules.length === 1) config.lora_target_modules = config.lora_target_modules[0];
  // transformers 5 has no warmup_ratio: warmup_steps < 1 is the ratio.
  if (o.warmup_ratio != null && !o.warmup_steps) config.warmup_steps = o.warmup_ratio;
  if (o.torch_dtype != null && o.dtype == null) config.dtype = o.torch_dtype;
  // The same global batch on N processes: per-device batch × N × accumulation.
  const n = r.numProcesses;
  if (n > 1) {
    const ga = Number(o.gradient_accumulation_steps), bs = Number(o.per_device_train_batch_size);
    if (ga % n === 0) config.gradient_accumulation_steps = ga / n;
    else if (bs % n === 0) config.per_device_train_batch_size = bs / n;
    else notes.push(`the global batch of ${bs * ga} pairs cannot be split over ${n} processes; TRL will step on ${bs * ga * n} (lower num_processes to a divisor of ${bs * ga})`);
    if (config.gradient_accumulation_steps !== undefined && config.gradient_accumulation_steps === 1) delete config.gradient_accumulation_steps;
  }
  const accelerate = r.distributed === 'fsdp2'
    ? {
        compute_environment: 'LOCAL_MACHINE', debug: false, distributed_type: 'FSDP', downcast_bf16: 'no', enable_cpu_affinity: false,
        fsdp_config: {
          fsdp_activation_checkpointing: false, fsdp_auto_wrap_policy: 'TRANSFORMER_BASED_WRAP', fsdp_cpu_ram_efficient_loading: true,
          fsdp_offload_params: false, fsdp_reshard_after_forward: true, fsdp_state_dict_type: 'FULL_STATE_DICT', fsdp_version: 2,
        },
      }
    : {
        compute_environment: 'LOCAL_MACHINE', debug: false,
        deepspeed_config: { deepspeed_multinode_launcher: 'standard', offload_optimizer_device: 'none', offload_param_device: 'none', zero3_init_flag: true, zero3_save_16bit_model: true, zero_stage: 3 },
        distributed_type: 'DEEPSPEED', downcast_bf16: 'no',
      };
  const accelerateYaml = stringify({
    ...accelerate, machine_rank: 0, main_training_function: 'main', mixed_precision: o.bf16 ? 'bf16' : 'no', num_machines: 1, num_processes: n,
    rdzv_backend: 'static', same_network: true, tpu_env: [], tpu_use_cluster: false, tpu_use_sudo: false, use_cpu: false,
  }, YAML_11);
  return { config, yaml: stringify(config, YAML_11), accelerateYaml, notes };
}

/** launch.sh: the multi-GPU command (and the one-process one in a comment). */
export function launchScript(source: string, r: RecipeOptions, loggingDir: string | null): string {
  return [
    '#!/usr/bin/env bash',
    `# TRL recipe exported by \`dpo export-trl\` from ${source}: the same run with TRL 1.13 + PEFT 0.21,`,
    `# on ${r.numProcesses} GPU processes with ${r.distributed === 'fsdp2' ? 'FSDP2' : 'DeepSpeed ZeRO-3'} (accelerate_config.yaml).`,
    `#   pip install "trl==1.13.0" "peft==0.21.0" accelerate${r.distributed === 'zero3' ? ' deepspeed' : ''}`,
    '# One process, no accelerate: python -m trl.scripts.dpo --config dpo.yaml',
    'set -euo pipefail',
    'cd "$(dirname "$0")"',
    ...(loggingDir ? [`export TENSORBOARD_LOGGING_DIR=${JSON.stringify(loggingDir)}`] : []),
    'trl dpo --config dpo.yaml --accelerate_config accelerate_config.yaml "$@"',
    '',
  ].join('\n');
}
