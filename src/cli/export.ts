/** `dpo export --format gguf | gguf-lora`: the model or its adapter as a llama.cpp GGUF file. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { DpoError } from '../errors.js';
import { mergeAndUnload } from '../lora/peft-io.js';
import { exportLoraGguf, exportModelGguf, GGUF_OUTTYPES, type GgufOuttype } from '../io/gguf-export.js';
import { loadPolicy } from './load-policy.js';
import { helpText, resolveOptions, spec, type Spec } from './args.js';

export const EXPORT_SPECS: Spec[] = [
  spec('model_name_or_path', 'string?', null, 'model directory, HF model id, or adapter directory naming its base'),
  spec('adapter_name_or_path', 'string?', null, 'a PEFT adapter: merged into the model (gguf) or exported alone (gguf-lora)'),
  spec('format', 'string', 'gguf', 'gguf: one merged model file; gguf-lora: the adapter alone, for --lora on a GGUF base', ['gguf', 'gguf-lora']),
  spec('outtype', 'string?', null, 'tensor type of the matrices (default f16 for gguf, f32 for gguf-lora, as llama.cpp\'s converters)', GGUF_OUTTYPES),
  spec('output', 'string?', null, 'the .gguf file to write'),
  spec('debug', 'bool', false, 'print stack traces on errors'),
];

export async function exportCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('export', 'write a model or LoRA adapter as GGUF for llama.cpp, node-llama-cpp, Ollama, LM Studio', EXPORT_SPECS));
    return;
  }
  const o = resolveOptions(argv, EXPORT_SPECS, 'export');
  if (!o.model_name_or_path) throw new DpoError('dpo export: --model_name_or_path is required');
  const output = o.output as string | null;
  if (!output) throw new DpoError('dpo export: --output FILE.gguf is required');
  if (existsSync(output) && statSync(output).isDirectory()) throw new DpoError(`dpo export: --output ${output} is a directory; give a file name such as ${output}/model.gguf`);
  const format = o.format as 'gguf' | 'gguf-lora';
  const outtype = ((o.outtype as string | null) ?? (format === 'gguf' ? 'f16' : 'f32')) as GgufOuttype;
  const p = loadPolicy(o.model_name_or_path as string, (o.adapter_name_or_path as string | null) ?? null);
  if (format === 'gguf-lora' && !p.adapter) throw new DpoError('dpo export: --format gguf-lora needs an adapter (--adapter_name_or_path DIR)');
  mkdirSync(dirname(resolve(output)), { recursive: true });
  const name = basename(resolve(p.adapter ?? p.base));
  let res;
  if (format === 'gguf') {
    if (p.adapter) mergeAndUnload(p.model);
    res = exportModelGguf(p.model, p.tokenizer, output, { outtype, name });
  } else res = exportLoraGguf(p.model, output, { outtype, name });
  for (const c of res.caveats) process.stderr.write(`dpo export: note: ${c}\n`);
  const what = format === 'gguf' ? (p.adapter ? `${p.base} + ${p.adapter} (merged)` : p.base) : `adapter ${p.adapter}`;
  console.log(`exported ${what} → ${output} (${format}, ${outtype}, ${res.tensors} tensors, ${(statSync(output).size / 2 ** 20).toFixed(1)} MiB)`);
}
