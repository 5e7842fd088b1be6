/**
 * Random Qwen2.5-shaped checkpoints in bf16 for bench/quant-scaling.ts: the shapes of
 * Qwen2.5-0.5B / 1.5B / 3B (vocab 151,936, tied embeddings, q/k/v biases), weights N(0, 0.02)-like
 * (a sum of uniforms from a fixed seed), norms 1. Streams each tensor to disk (never the whole
 * model in memory) and copies the tiny test tokenizer beside it (its ids are all < the vocab).
 * Deterministic: the same command writes the same bytes.
 *
 *   node dist/bench/make-qwen-checkpoint.js 0.5b /tmp/qwen-0.5b   # also 1.5b, 3b
 *   node dist/bench/make-qwen-checkpoint.js 0.5b /tmp/qwen-0.5b-sharded --shard 300MB   # shards + index
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/tensor/rng.js';
import { encodeHalf } from '../src/io/half.js';
import { parseSize, planShards, shardFileName, WEIGHTS_INDEX_NAME, WEIGHTS_NAME } from '../src/io/sharded.js';

export const QWEN_SHAPES: Record<string, { hidden: number; inter: number; layers: number; heads: number; kv: number }> = {
  '0.5b': { hidden: 896, inter: 4864, layers: 24, heads: 14, kv: 2 },
  '1.5b': { hidden: 1536, inter: 8960, layers: 28, heads: 12, kv: 2 },
  '3b': { hidden: 2048, inter: 11008, layers: 36, heads: 16, kv: 2 },
};
const VOCAB = 151936;

export function qwenConfig(size: string): Record<string, unknown> {
  const s = QWEN_SHAPES[size];
  return {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: s.hidden, intermediate_size: s.inter, num_hidden_layers: s.layers,
    num_attention_heads: s.heads, num_key_value_heads: s.kv, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000,
    tie_word_embeddings: true, vocab_size: VOCAB, hidden_act: 'silu', attention_dropout: 0, bos_token_id: 151643, eos_token_id: 151643,
    use_sliding_window: false, sliding_window: null, max_window_layers: s.layers, dtype: 'bfloat16',
  };
}

function tensors(size: string): [string, number[], 'normal' | 'ones' | 'zeros'][] {
  const s = QWEN_SHAPES[size], hd = s.hidden / s.heads;
  const out: [string, number[], 'normal' | 'ones' | 'zeros'][] = [['model.embed_tokens.weight', [VOCAB, s.hidden], 'normal'], ['model.norm.weight', [s.hidden], 'ones']];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [`${p}input_layernorm.weight`, [s.hidden], 'ones'], [`${p}post_attention_layernorm.weight`, [s.hidden], 'ones'],
      [`${p}self_attn.q_proj.weight`, [s.heads * hd, s.hidden], 'normal'], [`${p}self_attn.q_proj.bias`, [s.heads * hd], 'zeros'],
      [`${p}self_attn.k_proj.weight`, [s.kv * hd, s.hidden], 'normal'], [`${p}self_attn.k_proj.bias`, [s.kv * hd], 'zeros'],
      [`${p}self_attn.v_proj.weight`, [s.kv * hd, s.hidden], 'normal'], [`${p}self_attn.v_proj.bias`, [s.kv * hd], 'zeros'],
      [`${p}self_attn.o_proj.weight`, [s.hidden, s.heads * hd], 'normal'],
      [`${p}mlp.gate_proj.weight`, [s.inter, s.hidden], 'normal'], [`${p}mlp.up_proj.weight`, [s.inter, s.hidden], 'normal'],
      [`${p}mlp.down_proj.weight`, [s.hidden, s.inter], 'normal'],
    );
  }
  return out;
}

/** Writes the checkpoint (config.json, model.safetensors in BF16, tokenizer files); returns its size in bytes.
 * `maxShardBytes` splits the weights into model-0000k-of-0000n.safetensors + model.safetensors.index.json
 * (huggingface_hub's greedy rule, io/sharded.ts); the tensors hold the same values either way. */
export function makeQwenCheckpoint(size: string, dir: string, seed = 1234, maxShardBytes?: number): number {
  if (!QWEN_SHAPES[size]) throw new Error(`size must be one of ${Object.keys(QWEN_SHAPES).join(', ')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(qwenConfig(size), null, 2));
  const tok = 'test/fixtures/tokenizers/tiny-bpe';
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) if (existsSync(join(tok, f))) copyFileSync(join(tok, f), join(dir, f));
  const list = tensors(size).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const numel = (shape: number[]) => shape.reduce((a, d) => a * d, 1);
  const groups = maxShardBytes ? planShards(list.map(([name, shape]) => ({ name, bytes: numel(shape) * 2 })), maxShardBytes) : [list.map(([name]) => name)];
  const byName = new Map(list.map((t) => [t[0], t]));
  const rng = new Rng(seed);
  const weightMap: Record<string, string> = {};
  let total = 0, params = 0;
  groups.forEach((names, k) => {
    const file = groups.length === 1 ? WEIGHTS_NAME : shardFileName(WEIGHTS_NAME, k + 1, groups.length);
    const part = names.map((n) => byName.get(n)!);
    total += writeShard(join(dir, file), part, rng);
    for (const [name, shape] of part) {
      weightMap[name] = file;
      params += numel(shape);
    }
  });
  if (groups.length > 1) writeFileSync(join(dir, WEIGHTS_INDEX_NAME), JSON.stringify({ metadata: { total_parameters: params, total_size: params * 2 }, weight_map: weightMap }, null, 2));
  return total;
}

/** One safetensors file of BF16 tensors (in `list` order, values drawn from `rng`), streamed; returns its size. */
function writeShard(path: string, list: [string, number[], 'normal' | 'ones' | 'zeros'][], rng: Rng): number {
  let off = 0;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (const [name, shape] of list) {
    const bytes = shape.reduce((a, d) => a * d, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(path, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, Buffer.from(json));
  const CH = 1 << 20;
  const vals = new Float32Array(CH), bits = new Uint16Array(CH);
  for (const [, shape, init] of list) {
    const n = shape.reduce((a, d) => a * d, 1);
    for (let s = 0; s < n; s += CH) {
      const k = Math.min(CH, n - s);
      // (u1 + u2 + u3 − 1.5)·0.04: mean 0, std 0.02.
      for (let i = 0; i < k; i++) vals[i] = init === 'normal' ? (rng.nextFloat() + rng.nextFloat() + rng.nextFloat() - 1.5) * 0.04 : init === 'ones' ? 1 : 0;
      encodeHalf('BF16', vals.subarray(0, k), 0, bits.subarray(0, k));
      writeSync(fd, new Uint8Array(bits.buffer, 0, k * 2));
    }
  }
  closeSync(fd);
  return 8 + json.length + off;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [size, dir] = process.argv.slice(2);
  if (!size || !dir) {
    console.error('usage: node dist/bench/make-qwen-checkpoint.js 0.5b|1.5b|3b DIR [--shard 500MB]');
    process.exit(2);
  }
  const si = process.argv.indexOf('--shard');
  const t = Date.now();
  const bytes = makeQwenCheckpoint(size, dir, 1234, si > 0 ? parseSize(process.argv[si + 1], '--shard') : undefined);
  console.log(`${dir}: Qwen2.5-${size}-shaped bf16 checkpoint, ${(bytes / 1e9).toFixed(2)} GB in ${((Date.now() - t) / 1000).toFixed(0)} s`);
}
