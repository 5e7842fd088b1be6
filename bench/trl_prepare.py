"""TRL 1.13's data preparation on a JSONL file, timed: DPOTrainer._prepare_dataset itself (extract_prompt
if needed, add_eos, tokenize_fn, the keep_start filter) with dataset_num_proc=None, called on a stand-in
`self` that carries only the tokenizer (all the method reads). Prints one JSON line.

    .venv-ref/bin/python bench/trl_prepare.py --file big.jsonl --tokenizer_dir DIR [--max_length 1024]
"""
import argparse
import json
import os
import resource
import shutil
import tempfile
import time
import types
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
from datasets import load_dataset  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--file", required=True)
p.add_argument("--tokenizer_dir", required=True)
p.add_argument("--max_length", type=int, default=1024)
a = p.parse_args()

datasets.disable_caching()  # a rerun must tokenise again, not read a cached map
datasets.disable_progress_bars()
tmp = tempfile.mkdtemp()
for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
    if os.path.exists(os.path.join(a.tokenizer_dir, f)):
        shutil.copy(os.path.join(a.tokenizer_dir, f), tmp)
tok = AutoTokenizer.from_pretrained(tmp)
if tok.pad_token is None:
    tok.pad_token = tok.eos_token

t0 = time.perf_counter()
ds = load_dataset("json", data_files=a.file, split="train", cache_dir=os.path.join(tmp, "cache"))
t1 = time.perf_counter()
c0 = time.process_time()
args = DPOConfig(output_dir=os.path.join(tmp, "out"), dataset_num_proc=None, max_length=a.max_length, report_to=[], use_cpu=True, bf16=False)
fake_self = types.SimpleNamespace(_tokenizer=tok)
out = DPOTrainer._prepare_dataset(fake_self, ds, tok, args, "train")
t2 = time.perf_counter()
c1 = time.process_time()
tokens = 0
for col in ("prompt_ids", "chosen_ids", "rejected_ids"):
    tokens += sum(len(x) for x in out[col])
print(json.dumps({
    "rows": len(ds), "pairs": len(out), "load_s": t1 - t0, "prepare_s": t2 - t1, "cpu_s": c1 - c0, "tokens": tokens,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
shutil.rmtree(tmp, ignore_errors=True)
