/**
 * Dataset: rows of preference data with the seed's API (Dataset.fromDict / fromList / fromFile),
 * seeded shuffling and selection.
 */
import { DpoError } from '../errors.js';
import { Rng } from '../tensor/rng.js';
import type { Row } from './load.js';
import { readSplit, resolveDataset } from './hub-dataset.js';

export class Dataset {
  private constructor(readonly rows: Row[], readonly source: string) {}

  /** @example Dataset.fromDict({ prompt: ['hello'], chosen: ['hi nice to meet you'], rejected: ['leave me alone'] }) */
  static fromDict(columns: Record<string, unknown[]>): Dataset {
    const entries = Object.entries(columns);
    const n = entries[0]?.[1].length ?? 0;
    for (const [k, c] of entries) {
      if (!Array.isArray(c)) throw new DpoError(`Dataset.fromDict: column "${k}" is not a list`);
      if (c.length !== n) throw new DpoError(`Dataset.fromDict: column "${k}" has ${c.length} values but "${entries[0][0]}" has ${n}`);
    }
    return new Dataset(Array.from({ length: n }, (_, i) => Object.fromEntries(entries.map(([k, c]) => [k, c[i]]))), 'dict');
  }

  /** `source` names the rows in messages (a file, a Hub id). */
  static fromList(rows: Row[], source = 'list'): Dataset {
    return new Dataset(rows.slice(), source);
  }

  /**
   * .json, .jsonl, .parquet, an HF dataset directory, or a Hub id in the local HF cache (split chosen
   * by name; `name` = the configuration, `revision` = a branch, tag or commit of a Hub id).
   *
   * @example await Dataset.fromFile('trl-lib/ultrafeedback_binarized', { split: 'test' })
   */
  static async fromFile(path: string, opts: { split?: string; name?: string | null; revision?: string | null } = {}): Promise<Dataset> {
    const ds = resolveDataset({ path, name: opts.name, revision: opts.revision }, process.env, 'Dataset.fromFile');
    return new Dataset(await readSplit(ds, opts.split ?? 'train'), path);
  }

  get length(): number {
    return this.rows.length;
  }

  /** Fisher–Yates with the xoshiro128** generator seeded by `seed` (reproducible across runs). */
  shuffle(seed: number): Dataset {
    const p = new Rng(seed).permutation(this.rows.length);
    return new Dataset(Array.from(p, (i) => this.rows[i]), this.source);
  }

  select(indices: Iterable<number>): Dataset {
    return new Dataset(Array.from(indices, (i) => this.rows[i]), this.source);
  }

  /** Splits off a test fraction (after a seeded shuffle). */
  trainTestSplit(testSize: number, seed = 42): { train: Dataset; test: Dataset } {
    const s = this.shuffle(seed);
    const nTest = testSize < 1 ? Math.ceil(this.length * testSize) : testSize;
    return { train: s.select(Array.from({ length: this.length - nTest }, (_, i) => i + nTest)), test: s.select(Array.from({ length: nTest }, (_, i) => i)) };
  }
}
