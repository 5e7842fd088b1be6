/**
 * The one config parser against transformers 5.17's own config objects and the attention layers it
 * builds from them (fixture: tools/fixtures/make_configs.py), for every supported model_type,
 * complete configs and configs with keys left out (transformers' per-type defaults).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { archFromConfig, SUPPORTED_MODEL_TYPES } from '../../src/models/registry.js';

interface Case {
  name: string;
  config: Record<string, unknown>;
  transformers: Record<string, any>;
  layers: { scaling: number; sliding_window: number | null; use_rope: number | null; layer_type: string | null }[];
  tie_word_embeddings_top: boolean | null;
}
const FIX = JSON.parse(readFileSync('test/fixtures/configs/configs.json', 'utf8')) as { cases: Case[] };

test('the fixture covers every supported model_type', () => {
  const covered = new Set(FIX.cases.map((c) => c.config.model_type as string));
  for (const t of SUPPORTED_MODEL_TYPES) assert.ok(covered.has(t), `no config case for ${t}`);
});

for (const c of FIX.cases) {
  test(`${c.name}: parsed like transformers ${c.config.model_type} config`, { skip: !SUPPORTED_MODEL_TYPES.includes(c.config.model_type as string) }, () => {
    const a = archFromConfig(c.config, c.name);
    const t = c.transformers;
    const C = t.hidden_size ?? t.n_embd;
    const got = {
      vocab: a.vocabSize, hidden: a.hiddenSize, layers: a.numLayers, heads: a.numHeads, kv: a.numKvHeads, headDim: a.headDim,
      inter: a.intermediateSize, maxPos: a.maxPositions, eps: a.normEps, tie: a.tieEmbeddings, act: a.hiddenAct,
    };
    const want = {
      vocab: t.vocab_size, hidden: C, layers: t.num_hidden_layers ?? t.n_layer, heads: t.num_attention_heads ?? t.n_head,
      kv: t.num_key_value_heads ?? t.num_attention_heads ?? t.n_head, headDim: t.head_dim ?? C / (t.num_attention_heads ?? t.n_head),
      inter: t.intermediate_size ?? t.n_inner ?? 4 * C, maxPos: t.max_position_embeddings ?? t.n_positions,
      eps: t.rms_norm_eps ?? t.layer_norm_epsilon, tie: c.tie_word_embeddings_top ?? t.tie_word_embeddings,
      act: t.hidden_activation ?? t.hidden_act ?? t.activation_function,
    };
    assert.deepEqual(got, want);
    c.layers.forEach((l, i) => {
      const s = a.layer(i);
      assert.equal(s.window, l.sliding_window ?? 0, `layer ${i} window`);
      assert.ok(Math.abs(a.attnScale - l.scaling) < 1e-12, `layer ${i} attention scale ${a.attnScale} vs ${l.scaling}`);
      const rp = t.rope_parameters;
      if (l.use_rope === 0 || !rp) {
        assert.equal(s.rope, null, `layer ${i} has no RoPE`);
        return;
      }
      const type = l.layer_type ?? t.layer_types?.[i];
      const want = type && rp[type] ? rp[type] : rp;
      const plan = a.rope!.plan;
      const r = plan.perLayer ? plan.params[s.rope!] : plan.params;
      assert.ok(r, `layer ${i} RoPE table ${s.rope}`);
      assert.deepEqual([r.rope_type, r.rope_theta], [want.rope_type, want.rope_theta], `layer ${i} RoPE`);
      for (const k of ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings', 'partial_rotary_factor'] as const) {
        if (want[k] !== undefined && want[k] !== null) assert.equal(r[k], want[k], `layer ${i} RoPE ${k}`);
      }
    });
    for (const [ours, theirs] of [[a.residualMultiplier, t.residual_multiplier], [a.logitsScaling, t.logits_scaling], [a.embedScale, t.embedding_multiplier]] as const) if (theirs !== undefined) assert.equal(ours, theirs);
    for (const [ours, theirs] of [[a.attnSoftcap, t.attn_logit_softcapping], [a.finalSoftcap, t.final_logit_softcapping]] as const) assert.equal(ours, theirs ?? 0, 'soft-caps');
  });
}
