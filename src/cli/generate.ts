/** `dpo generate`: sample completions (chat-template aware) from a model, model + adapter, or merged model. */
import { DpoError } from '../errors.js';
import { generate } from '../generate/generate.js';
import { loadPolicy } from './load-policy.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

export const GENERATE_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'model directory, HF model id, or adapter directory'),
  spec('adapter_name_or_path', 'string?', null, 'a PEFT adapter to apply to the model'),
  spec('prompt', 'strings', null, 'one or more prompts'),
  spec('max_new_tokens', 'int', 64, 'tokens to generate at most'),
  spec('temperature', 'float', 0, 'sampling temperature (0 = greedy)'),
  spec('top_k', 'int', 0, 'sample among the k most likely tokens (0 = all)'),
  spec('top_p', 'float', 1, 'nucleus sampling threshold'),
  spec('seed', 'int', 0, 'sampling seed'),
  spec('chat', 'bool', true, 'wrap prompts in the chat template when the tokenizer has one'),
  spec('config', 'string?', null, 'YAML file with any of these options'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

export async function generateCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('generate', 'sample completions for prompts', GENERATE_SPECS));
    return;
  }
  const o = resolveOptions(argv, GENERATE_SPECS, 'generate');
  if (!o.model_name_or_path) throw new DpoError('dpo generate: --model_name_or_path is required');
  const prompts = (o.prompt as string[] | null) ?? [];
  if (!prompts.length) throw new DpoError('dpo generate: give at least one --prompt "text"');
  const { model, tokenizer } = loadPolicy(o.model_name_or_path as string, (o.adapter_name_or_path as string | null) ?? null);
  const eos = [tokenizer.eosTokenId].filter((x): x is number => x !== null);
  for (const p of prompts) {
    const ids = o.chat && tokenizer.chatTemplate ? tokenizer.applyChatTemplateIds([{ role: 'user', content: p }], { addGenerationPrompt: true }) : tokenizer.encode(p);
    const out = generate(model, ids, { maxNewTokens: o.max_new_tokens as number, temperature: o.temperature as number, topK: o.top_k as number, topP: o.top_p as number, seed: o.seed as number, eosTokenIds: eos });
    console.log(`### ${p}\n${tokenizer.decode(out, { skipSpecialTokens: true })}\n`);
  }
}
