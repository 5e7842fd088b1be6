/**
 * bf16 (`bf16: true`): every float32 GEMM runs on bf16-rounded operands with float32 accumulation,
 * while weights, gradients and AdamW state stay float32. The metrics of a pinned TRL f32 run must
 * stay within 2e-2 (relative above 1, absolute below) of TRL's — and must actually move, or bf16
 * would not be on. The reference copy then stores its linear weights as bf16 bits, with no change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replayTrlRun } from '../helpers/trl-run.js';
import { join } from 'node:path';
import { getBackend, getMatmulPrecision, nativeAvailable, setBackend, setMatmulPrecision } from '../../src/backend/index.js';
import { loadCausalLM } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { copyReference } from '../../src/dpo/reference.js';
import type { PairBatch } from '../../src/dpo/logps.js';
import { FrozenBf16Linear } from '../../src/nn/frozen-bf16-linear.js';
import { Rng } from '../../src/tensor/rng.js';

// The argmax of a random model's near-uniform logits flips under any rounding; allow 5 points.
const TOL: Record<string, number> = { mean_token_accuracy: 0.05 };

// One pinned run per architecture the tests load (llama, qwen2, gpt2, mistral, qwen3).
for (const name of ['llama-sigmoid', 'qwen2-lora-continued-conv', 'gpt2-sft-sigmoid', 'mistral-sigmoid', 'qwen3-sigmoid-ipo-weighted']) {
  test(`bf16 stays within 2e-2 of TRL's f32 run: ${name}`, async () => {
    const { run, ours } = await replayTrlRun(name, { bf16: true });
    assert.equal(getMatmulPrecision(), 'float32', 'train() restores float32 GEMMs');
    assert.equal(ours.length, run.log_history.length);
    const worst: string[] = [];
    let moved = 0;
    run.log_history.forEach((ref, i) => {
      for (const [k, v] of Object.entries(ref)) {
        if (k === 'step' || k === 'epoch' || typeof v !== 'number') continue;
        const d = Math.abs(ours[i][k] - v);
        moved = Math.max(moved, d / Math.max(Math.abs(v), 1));
        if (d > (TOL[k] ?? 2e-2 * Math.max(Math.abs(v), 1))) worst.push(`step ${i + 1} ${k}: bf16 ${ours[i][k]} vs TRL f32 ${v}`);
      }
    });
    assert.deepEqual(worst, []);
    assert.ok(moved > 1e-4, `bf16 changed nothing (max deviation ${moved}): are the GEMMs really bf16?`);
  });
}

test('bf16 reference copy: linear weights stored as bf16 bits give the same log-probs bit for bit, both backends', () => {
  const prevBackend = getBackend().name;
  try {
    for (const backend of nativeAvailable() ? (['ref', 'native'] as const) : (['ref'] as const)) {
      setBackend(backend);
      for (const name of ['llama', 'qwen2', 'gpt2']) {
        const { model } = loadCausalLM(join('test/fixtures/models', name));
        const rng = new Rng(4);
        const rows = 4, T = 12;
        const b: PairBatch = {
          inputIds: Int32Array.from({ length: rows * T }, () => rng.nextInt(model.arch.vocabSize)),
          attentionMask: Uint8Array.from({ length: rows * T }, (_, i) => (i % T < T - (i / T | 0) ? 1 : 0)),
          completionMask: Uint8Array.from({ length: rows * T }, (_, i) => (i % T >= 4 && i % T < T - (i / T | 0) ? 1 : 0)),
          rows, T,
        };
        setMatmulPrecision('bfloat16');
        try {
          const plain = copyReference(model), compact = copyReference(model, { bf16Weights: true });
          assert.ok(compact.model!.namedModules().some(([, m]) => m instanceof FrozenBf16Linear), `${name}: no linear stored in bf16`);
          const bytes = (m: CausalLM) => m.parameters().reduce((s, p) => s + p.data.byteLength, 0);
          assert.ok(bytes(compact.model!) < bytes(plain.model!), `${name}: the compact copy holds no fewer float32 bytes`);
          assert.deepEqual(compact.logps(b, { ldAlpha: null }), plain.logps(b, { ldAlpha: null }), `${name} (${backend})`);
          assert.throws(() => compact.mixup(model, 0.5), /sync_ref_model needs a float32 reference copy/);
        } finally {
          setMatmulPrecision('float32');
        }
      }
    }
  } finally {
    setBackend(prevBackend);
  }
});
