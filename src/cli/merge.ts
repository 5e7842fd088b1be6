/** `dpo merge`: merge a LoRA adapter into its base and save a full checkpoint transformers loads. */
import { DpoError } from '../errors.js';
import { mergeAndUnload } from '../lora/peft-io.js';
import { copySourceFiles, saveLikeSource } from '../models/save-like-source.js';
import { loadPolicy } from './load-policy.js';
import { ensureWritableDir } from './run-training.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

export const MERGE_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'base model (or an adapter directory naming its base)'),
  spec('adapter_name_or_path', 'string?', null, 'the PEFT adapter to merge'),
  spec('output_dir', 'string?', null, 'where to write the merged model'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

export async function mergeCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('merge', 'merge a LoRA adapter into its base model', MERGE_SPECS));
    return;
  }
  const o = resolveOptions(argv, MERGE_SPECS, 'merge');
  if (!o.model_name_or_path) throw new DpoError('dpo merge: --model_name_or_path is required');
  if (!o.output_dir) throw new DpoError('dpo merge: --output_dir is required');
  const p = loadPolicy(o.model_name_or_path as string, (o.adapter_name_or_path as string | null) ?? null);
  if (!p.adapter) throw new DpoError('dpo merge: no adapter given (--adapter_name_or_path)');
  ensureWritableDir(o.output_dir as string);
  mergeAndUnload(p.model);
  // The base's layout: its names and dtypes, the tensors never loaded (a vision tower) as they are, its config.json and processor files.
  saveLikeSource(p.model, p.dir, o.output_dir as string, { dtype: 'source' });
  copySourceFiles(p.dir, o.output_dir as string);
  p.tokenizer.save(o.output_dir as string);
  console.log(`merged ${p.adapter} into ${p.base} → ${o.output_dir}`);
}
