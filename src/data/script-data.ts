/**
 * The data sets of a `trl dpo` run, as TRL's script (trl/scripts/dpo.py) picks them: the YAML
 * `datasets:` mixture when given (dataset_name is then ignored, with TRL's warning), else
 * `load_dataset(dataset_name, name=dataset_config)`; the train split is `dataset_train_split`, and the
 * eval split `dataset_test_split`, read only when evaluation is on.
 *
 * @example await scriptDatasets({ dataset_name: 'trl-lib/ultrafeedback_binarized', dataset_train_split: 'train', dataset_test_split: 'test' }, true, 42)
 */
import { DpoError } from '../errors.js';
import { Dataset } from './dataset.js';
import { readSplit, resolveDataset } from './hub-dataset.js';
import { loadMixture, parseMixture } from './mixture.js';

export interface ScriptDataArgs {
  dataset_name?: string | null;
  dataset_config?: string | null;
  dataset_revision?: string | null;
  dataset_train_split: string;
  /** One split, or several (a list, or comma-separated) evaluated apart. */
  dataset_test_split: string | string[];
  datasets?: unknown;
  test_split_size?: number | null;
}

export interface ScriptData {
  train: Dataset;
  /** One eval set, several by split name, or none. */
  eval: Dataset | Record<string, Dataset> | null;
  /** What the data came from, for the start-up line. */
  label: string;
  notes: string[];
}

export async function scriptDatasets(o: ScriptDataArgs, withEval: boolean, seed: number, env: NodeJS.ProcessEnv = process.env, where = 'dpo train'): Promise<ScriptData> {
  const notes: string[] = [];
  const mixture = Array.isArray(o.datasets) && o.datasets.length ? parseMixture(o.datasets, `${where}: datasets`) : null;
  if (!mixture && o.test_split_size != null) throw new DpoError(`${where}: test_split_size splits a datasets: mixture; with --dataset_name pass a data set that has a ${o.dataset_test_split} split`);
  if (mixture) {
    if (o.dataset_name) notes.push(`both datasets and dataset_name are given: the datasets mixture is used and dataset_name ${o.dataset_name} is ignored (as TRL)`);
    if (o.test_split_size != null) notes.push(`test_split_size ${o.test_split_size}: the test rows are drawn by a shuffle seeded with --seed ${seed} (TRL's train_test_split is unseeded, so its rows change from run to run)`);
    const splits = await loadMixture({ datasets: mixture, test_split_size: o.test_split_size }, seed, env, `${where}: datasets`);
    const pick = async (s: string, test: boolean) => {
      const d = splits[s];
      if (!d) throw new DpoError(`${where}: the datasets mixture has no "${s}" split (it has ${Object.keys(splits).join(', ')}); ${test ? 'set test_split_size to split one off' : 'set --dataset_train_split train'}`);
      return d;
    };
    return { train: await pick(o.dataset_train_split, false), eval: withEval ? await evalSets(o.dataset_test_split, (s) => pick(s, true), where) : null, label: `mixture of ${mixture.map((m) => m.path).join(', ')}`, notes };
  }
  if (!o.dataset_name) throw new DpoError(`${where}: --dataset_name is required (a .json/.jsonl/.parquet file, a dataset folder or a Hub id in your HF cache), or a datasets: list in --config`);
  const ds = resolveDataset({ path: o.dataset_name, name: o.dataset_config, revision: o.dataset_revision }, env, where);
  const train = Dataset.fromList(await readSplit(ds, o.dataset_train_split, '--dataset_train_split'), ds.label);
  const evalDs = withEval ? await evalSets(o.dataset_test_split, async (s) => Dataset.fromList(await readSplit(ds, s, '--dataset_test_split'), ds.label), where) : null;
  const label = ds.snapshot ? `${ds.label}${ds.config ? ` (${ds.config})` : ''} from the HF cache (snapshot ${ds.snapshot.commit.slice(0, 12)})` : `${o.dataset_name}${ds.config ? ` (${ds.config})` : ''}`;
  return { train, eval: evalDs, label, notes };
}

/** The eval split(s): one Dataset, or several by name (a list or comma-separated names, each once). */
async function evalSets(splits: string | string[], read: (split: string) => Promise<Dataset>, where: string): Promise<Dataset | Record<string, Dataset>> {
  const names = (Array.isArray(splits) ? splits : [splits]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '');
  if (!names.length) throw new DpoError(`${where}: --dataset_test_split is empty; name a split (test) or several (test,validation)`);
  if (new Set(names).size < names.length) throw new DpoError(`${where}: --dataset_test_split ${names.join(',')} names a split twice; list each once`);
  if (names.length === 1) return read(names[0]);
  const out: Record<string, Dataset> = {};
  for (const n of names) out[n] = await read(n);
  return out;
}
