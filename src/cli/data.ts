/** `dpo data`: validate and describe a preference data set before training on it. */
import { DpoError } from '../errors.js';
import { Dataset } from '../data/dataset.js';
import { detectFormat, refuseImages, validateRows } from '../data/validate.js';
import { prepareRowsParallel, prepareThreads } from '../data/prepare-parallel.js';
import { resolveModelDir } from '../io/model-source.js';
import { HfTokenizer } from '../tokenizer/tokenizer.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

export const DATA_SPECS: Spec[] = [
  spec('dataset_name', 'string?', null, 'data file or dataset directory'),
  spec('dataset_train_split', 'string', 'train', 'split of a dataset directory'),
  spec('model_name_or_path', 'string?', null, 'model (or tokenizer) directory for token statistics'),
  spec('max_length', 'int?', 1024, 'the max_length to check truncation against'),
  spec('truncation_mode', 'string', 'keep_start', 'truncation mode', ['keep_start', 'keep_end']),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))] ?? 0;
}

export async function dataCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('data', 'validate and describe a preference data set', DATA_SPECS));
    return 0;
  }
  const o = resolveOptions(argv, DATA_SPECS, 'data');
  if (!o.dataset_name) throw new DpoError('dpo data: --dataset_name is required');
  const ds = await Dataset.fromFile(o.dataset_name as string, { split: o.dataset_train_split as string });
  refuseImages(ds.rows, String(o.dataset_name));
  const f = detectFormat(ds.rows);
  console.log(`${o.dataset_name}: ${ds.length} rows, ${f.conversational ? 'conversational' : 'standard'} format, ${f.explicitPrompt ? 'explicit' : 'implicit'} prompt`);
  const errors = validateRows(ds.rows, f);
  if (errors.length) {
    console.log(`${new Set(errors.map((e) => e.row)).size} invalid rows:`);
    for (const e of errors) console.log(`  row ${e.row}, ${e.field}: ${e.reason}`);
  } else console.log('all rows valid');
  if (o.model_name_or_path) {
    const tok = HfTokenizer.fromDir(resolveModelDir(o.model_name_or_path as string));
    if (tok.padToken === null) tok.padToken = tok.eosToken;
    const bad = new Set(errors.map((e) => e.row));
    const rows = ds.rows.filter((_, i) => !bad.has(i));
    const max = o.max_length as number | null;
    const { pairs } = prepareRowsParallel(rows, tok, { maxLength: null, truncationMode: o.truncation_mode as string, warn: () => {} }, f.conversational, prepareThreads(rows.length, null));
    const col = (k: 'promptIds' | 'chosenIds' | 'rejectedIds') => pairs.map((p) => p[k].length);
    console.log('token lengths          p50    p90    p99    max');
    for (const [name, k] of [['prompt', 'promptIds'], ['chosen', 'chosenIds'], ['rejected', 'rejectedIds']] as const) {
      const xs = col(k);
      console.log(`  ${name.padEnd(20)} ${[0.5, 0.9, 0.99, 1].map((q) => String(pct(xs, q)).padStart(6)).join(' ')}`);
    }
    if (max !== null) {
      const truncated = pairs.filter((p) => p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length) > max).length;
      const dropped = pairs.filter((p) => p.promptIds.length >= max).length;
      console.log(`max_length ${max}: ${truncated} rows truncated, ${o.truncation_mode === 'keep_start' ? dropped : 0} rows dropped (prompt alone fills max_length)`);
    }
  }
  return errors.length ? 1 : 0;
}
