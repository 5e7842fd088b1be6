#!/usr/bin/env node
/**
 * The `dpo` command: train, generate, eval, merge, data, demo. Errors: one line, exit code 2; a
 * training run a signal stopped: 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
 */
import { DpoError } from '../errors.js';
import { trainCommand } from './train.js';
import { generateCommand } from './generate.js';
import { evalCommand } from './eval.js';
import { mergeCommand } from './merge.js';
import { dataCommand } from './data.js';
import { demoCommand } from './demo.js';
import { cpuCommand } from './cpu.js';
import { exportCommand } from './export.js';
import { pairsCommand } from './pairs.js';
import { exportTrlCommand } from './export-trl.js';

const USAGE = `dpo — Direct Preference Optimization for causal language models (TRL-compatible)

Usage: dpo <command> [--option value ...]   (dpo <command> --help lists every option)

Commands:
  train      align a model on preference pairs (flags as TRL's \`trl dpo\`)
  generate   sample completions from a model, model + adapter, or merged model
  pairs      sample completions, score them with a judge module, write preference pairs
  eval       DPO metrics of a model / adapter on a data set
  merge      merge a LoRA adapter into its base model
  export     a model or adapter as GGUF for llama.cpp / node-llama-cpp / Ollama
  export-trl a TRL recipe (trl dpo YAML, data, accelerate config, launch.sh) that reproduces a run
  data       validate and describe a preference data set
  demo       train a small built-in model on the example data (no downloads)
  cpu        what runs the math here: CPU, vector ISA, bf16 route, threads`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'train': await trainCommand(rest); return 0;
    case 'generate': await generateCommand(rest); return 0;
    case 'eval': await evalCommand(rest); return 0;
    case 'pairs': await pairsCommand(rest); return 0;
    case 'merge': await mergeCommand(rest); return 0;
    case 'export': await exportCommand(rest); return 0;
    case 'export-trl': await exportTrlCommand(rest); return 0;
    case 'data': return dataCommand(rest);
    case 'demo': await demoCommand(rest); return 0;
    case 'cpu': cpuCommand(); return 0;
    case undefined: case '--help': case '-h': case 'help':
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new DpoError(`unknown command "${cmd}"; commands: train, generate, eval, pairs, merge, export, export-trl, data, demo, cpu (dpo --help)`);
  }
}

const argv = process.argv.slice(2);
const debug = argv.includes('--debug');
main(argv.filter((a) => a !== '--debug')).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof DpoError) {
      process.stderr.write(`dpo: ${e.message}\n`);
      if (debug) process.stderr.write(`${e.stack}\n`);
      process.exit(e.exitCode);
    }
    if (e instanceof RangeError && /Array buffer allocation failed|Invalid typed array length/.test(e.message)) {
      // A buffer larger than the memory left: say so and what shrinks it, instead of an internal error.
      process.stderr.write(`dpo: out of memory (${e.message}); try --use_peft (LoRA), --bf16, a smaller --max_length or --per_device_train_batch_size, or --gradient_checkpointing\n`);
      if (debug) process.stderr.write(`${e.stack}\n`);
      process.exit(2);
    }
    process.stderr.write(`dpo: internal error: ${(e as Error)?.message ?? String(e)}${debug ? `\n${(e as Error)?.stack}` : ' (run with --debug for the stack trace)'}\n`);
    process.exit(1);
  },
);
