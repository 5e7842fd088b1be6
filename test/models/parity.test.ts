/**
 * Logits and every parameter gradient vs transformers (fixtures from tools/fixtures/make_models.py),
 * llm.c style: the worst tensor is printed. Runs on the active backend (native when built).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backward } from '../../src/autograd/tape.js';
import { scope } from '../../src/tensor/pool.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/load.js';
import { tokenLogprobs, mul, sum } from '../../src/ops/index.js';
import { getBackend, nativeAvailable, setBackend } from '../../src/backend/index.js';

const MODELS = join(process.cwd(), 'test', 'fixtures', 'models');

export function loadExpected(name: string): { meta: { input_ids: number[][]; attention_mask: number[][] }; t: Map<string, Float32Array>; shapes: Map<string, number[]> } {
  const dir = join(MODELS, name);
  const meta = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  const f = new SafetensorsFile(join(dir, 'expected.safetensors'));
  const t = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const [n, info] of f.tensors) {
    t.set(n, f.read(n));
    shapes.set(n, info.shape);
  }
  f.close();
  return { meta, t, shapes };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const backends = nativeAvailable() ? (['ref', 'native'] as const) : (['ref'] as const);
for (const backend of backends) for (const name of ['llama', 'llama-tied', 'mistral', 'qwen2', 'qwen3', 'gpt2', 'llama-bf16', 'llama-sharded', 'gemma3', 'gemma3-mm', 'gemma2', 'olmo2', 'granite', 'smollm3', 'llama-linear', 'llama-dynamic', 'llama-yarn', 'llama-longrope', 'gemma3-rope', 'phi3']) {
  test(`${name}: logits and every parameter gradient match transformers (${backend})`, () => {
    const prev = getBackend().name;
    setBackend(backend);
    try {
      check(name);
    } finally {
      setBackend(prev);
    }
  });
}

function check(name: string): void {
  {
    const { model } = loadCausalLM(join(MODELS, name));
    const { meta, t } = loadExpected(name);
    const B = meta.input_ids.length, T = meta.input_ids[0].length;
    const ids = Int32Array.from(meta.input_ids.flat());
    const attentionMask = Uint8Array.from(meta.attention_mask.flat());
    for (const p of model.parameters()) p.requiresGrad = true;
    scope(() => {
      const logits = model.logits({ ids, B, T, attentionMask });
      // Padded query positions that see no valid key (Mistral's window past a short row) are
      // undefined (eager and sdpa disagree there); compare real tokens only.
      const V = model.arch.vocabSize;
      const el = t.get('logits')!;
      let errL = 0;
      for (let i = 0; i < B * T; i++) if (attentionMask[i]) errL = Math.max(errL, maxAbs(logits.data.subarray(i * V, (i + 1) * V), el.subarray(i * V, (i + 1) * V)));
      assert.ok(errL <= 1e-4, `${name}: logits max abs error ${errL}`);
      // Loss of the fixture: Σ_valid logp(next token)·w_t, through the fused log-prob op.
      const h = model.hidden({ ids, B, T, attentionMask });
      const targets = new Int32Array(B * T).fill(-1);
      const wts = new Float32Array(B * T);
      const w = t.get('weights')!;
      for (let b = 0; b < B; b++) for (let s = 0; s + 1 < T; s++) {
        if (attentionMask[b * T + s + 1]) {
          targets[b * T + s] = ids[b * T + s + 1];
          wts[b * T + s] = w[s];
        }
      }
      const { logp } = tokenLogprobs(h, model.lmHeadWeight(), targets, { chunk: 100, softcap: model.finalLogitSoftcap });
      const lp = t.get('logp')!;
      let errP = 0;
      for (let b = 0; b < B; b++) for (let s = 0; s + 1 < T; s++) errP = Math.max(errP, Math.abs(logp.data[b * T + s] - lp[b * (T - 1) + s]));
      assert.ok(errP <= 1e-4, `${name}: per-token log-prob error ${errP}`);
      backward(sum(mul(logp, Tensor.from(wts, [B * T]))));
      let worst = { name: '', rel: 0 };
      for (const [pname, p] of model.namedParameters()) {
        // transformers' parameter name (a multimodal model's text model is model.language_model).
        const hfName = model.arch.weightPrefix && pname.startsWith('model.') ? `model.language_model.${pname.slice(6)}` : pname;
        const g = t.get(`grad.${hfName}`);
        assert.ok(g, `${name}: fixture has no gradient for ${pname}`);
        const ref = name === 'gpt2' && /(c_attn|c_proj|c_fc)\.weight$/.test(pname) ? transposeOf(g, p.shape) : g;
        let num = 0, den = 0;
        for (let i = 0; i < ref.length; i++) {
          num = Math.max(num, Math.abs(p.grad!.data[i] - ref[i]));
          den = Math.max(den, Math.abs(ref[i]));
        }
        const rel = num / Math.max(den, 1e-6);
        if (rel > worst.rel) worst = { name: pname, rel };
      }
      console.log(`# ${name} (${getBackend().name}): logits err ${errL.toExponential(2)}, logp err ${errP.toExponential(2)}, worst grad ${worst.name} rel ${worst.rel.toExponential(2)}`);
      assert.ok(worst.rel <= 1e-4, `${name}: gradient of ${worst.name} off by ${worst.rel} (relative to its max)`);
    });
  }
}

/** HF Conv1D gradients are (in, out); ours are (out, in). */
function transposeOf(g: Float32Array, shape: readonly number[]): Float32Array {
  const [o, i] = shape;
  const out = new Float32Array(g.length);
  for (let a = 0; a < i; a++) for (let b = 0; b < o; b++) out[b * i + a] = g[a * o + b];
  return out;
}
