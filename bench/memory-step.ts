/**
 * Where a DPO step's memory goes (workload A): after each step prints the process RSS and peak
 * RSS, the pool's live bytes and their high-water mark, and the idle pooled bytes.
 *   node dist/bench/memory-step.js [--steps 3] [--bf16] [--gradient_checkpointing] [--dir /tmp/dpo-bench]
 */
import { loadCausalLM } from '../src/models/load.js';
import { HfTokenizer } from '../src/tokenizer/tokenizer.js';
import { Dataset } from '../src/data/dataset.js';
import { DPOConfig } from '../src/dpo/config.js';
import { DPOTrainer } from '../src/dpo/trainer.js';
import { poolStats, pooledBytesNow } from '../src/tensor/pool.js';
import { makeWorkload } from './workload.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const { modelDir, dataPath } = makeWorkload(opt('dir', '/tmp/dpo-bench'));
const GB = (b: number) => (b / 1024 ** 3).toFixed(2);
const report = (what: string) => {
  const { liveBytes, peakBytes } = poolStats();
  const m = process.memoryUsage();
  console.log(`${what}: rss ${GB(m.rss)} GB (peak ${GB(process.resourceUsage().maxRSS * 1024)}), pool live ${GB(liveBytes)} peak ${GB(peakBytes)} idle ${GB(pooledBytesNow())}, JS heap ${GB(m.heapUsed)}, array buffers ${GB(m.arrayBuffers)}`);
};
const { model } = loadCausalLM(modelDir);
report('model loaded');
const t = new DPOTrainer({
  model, args: new DPOConfig({ output_dir: '/tmp/dpo-bench/memory', per_device_train_batch_size: 4, max_steps: Number(opt('steps', '3')), max_length: 512, save_strategy: 'no', logging_steps: 1,
    bf16: argv.includes('--bf16'), gradient_checkpointing: argv.includes('--gradient_checkpointing') }),
  trainDataset: await Dataset.fromFile(dataPath), processingClass: HfTokenizer.fromDir(modelDir), warn: () => {},
  callbacks: { onStep: (p) => report(`step ${p.step}`) },
});
report('trainer built (reference copy, data)');
await t.train();
