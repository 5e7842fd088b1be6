/**
 * node-llama-cpp for the GGUF tests: its prebuilt linux-x64 CPU binary only (never a download or a
 * source build). Where that binary cannot load (another platform, an old glibc), `loadLlamaCpp`
 * returns the reason and the tests skip with it; they never fail for that.
 */
import { noGrad } from '../../src/autograd/tape.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import type { Llama, LlamaModel, LlamaContextSequence, Token } from 'node-llama-cpp';

let cached: Promise<{ llama: Llama } | { skip: string }> | null = null;

export function loadLlamaCpp(): Promise<{ llama: Llama } | { skip: string }> {
  cached ??= (async () => {
    process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
    try {
      const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
      const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: LlamaLogLevel.error, maxThreads: 2 });
      return { llama };
    } catch (e) {
      return { skip: `node-llama-cpp's prebuilt binary does not load here (${(e as Error).message.split('\n')[0]})` };
    }
  })();
  return cached;
}

/** Per-position logits (T, V) of `ids`, from an emptied sequence. */
export async function llamaCppLogits(seq: LlamaContextSequence, ids: readonly number[], V: number): Promise<Float32Array> {
  await seq.clearHistory();
  {
    const res = await seq.controlledEvaluate(ids.map((t) => [t as Token, { generateNext: { logits: true } }] as [Token, { generateNext: { logits: true } }]));
    const out = new Float32Array(ids.length * V).fill(NaN);
    res.forEach((r, i) => {
      for (const [tok, l] of r?.next?.logits ?? []) out[i * V + tok] = l;
    });
    return out;
  }
}

/** Greedy continuation of `n` tokens (temperature 0, no penalties). */
export async function llamaCppGreedy(seq: LlamaContextSequence, prompt: readonly number[], n: number): Promise<number[]> {
  await seq.clearHistory();
  const out: number[] = [];
  for await (const t of seq.evaluate(prompt.slice() as Token[], { temperature: 0 })) {
    out.push(t);
    if (out.length >= n) break;
  }
  return out;
}

/** Our logits (T, V) of one sequence. */
export function ourLogits(model: CausalLM, ids: readonly number[]): Float32Array {
  return Float32Array.from(noGrad(() => model.logits({ ids: Int32Array.from(ids), B: 1, T: ids.length })).data);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export type { LlamaModel };
