"""TRL 1.13 + PEFT 0.21 side of bench/quant-scaling.ts: float32 DPO with LoRA (r 16, alpha 32, dropout 0.05,
target_modules "all-linear") on the same checkpoint, data and settings as one `dpo train` run. Prints, flushed,
LOADED when the model and tokenizer are loaded, READY when training begins, STEP n after each optimizer step
(the parent timestamps these lines as it does ours), then one RESULT line: the token counts TRL's dataset
holds (to check both sides see the same tokens) and the peak RSS (ru_maxrss of this process).

    .venv-ref/bin/python bench/trl_scaling.py --model DIR --data FILE [--steps 3] [--grad_accum 8]
        [--max_length 1024] [--learning_rate 2e-4] [--gradient_checkpointing] [--threads N]
"""
import argparse
import json
import os
import resource
import tempfile
import warnings

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--data", required=True)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--grad_accum", type=int, default=8)
p.add_argument("--max_length", type=int, default=1024)
p.add_argument("--learning_rate", type=float, default=2e-4)
p.add_argument("--gradient_checkpointing", action="store_true")
p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
a = p.parse_args()
os.environ["OMP_NUM_THREADS"] = str(a.threads)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import datasets  # noqa: E402
import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

torch.set_num_threads(a.threads)
datasets.disable_caching()
datasets.disable_progress_bars()
hf_logging.set_verbosity_error()


class Marks(TrainerCallback):
    def on_train_begin(self, args, state, control, **kw):
        print("READY", flush=True)

    def on_step_end(self, args, state, control, **kw):
        print(f"STEP {state.global_step}", flush=True)


tok = AutoTokenizer.from_pretrained(a.model)
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
print("LOADED", flush=True)
out = tempfile.mkdtemp(prefix="trl-scaling-")
args = DPOConfig(
    output_dir=out, max_steps=a.steps, per_device_train_batch_size=1, gradient_accumulation_steps=a.grad_accum,
    learning_rate=a.learning_rate, max_length=a.max_length, gradient_checkpointing=a.gradient_checkpointing, bf16=False,
    logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=42, dataloader_num_workers=0, disable_tqdm=True,
)
peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
ds = load_dataset("json", data_files=a.data, split="train")
tr = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config, callbacks=[Marks()])
tr.train()
td = tr.train_dataset
P, C, R = ([len(x) for x in td[col]] for col in ("prompt_ids", "chosen_ids", "rejected_ids"))
L = a.max_length
print("RESULT " + json.dumps({
    "pairs": len(td), "prompt": sum(P), "chosen": sum(C), "rejected": sum(R),
    # What the collator keeps of each row (keep_start: prompt + completion cut at max_length).
    "chosen_row": sum(min(p + c, L) for p, c in zip(P, C)), "rejected_row": sum(min(p + r, L) for p, r in zip(P, R)),
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,  # GB of 10^9 bytes, as dpo train prints
    "threads": torch.get_num_threads(), "versions": {"torch": torch.__version__, "trl": __import__("trl").__version__, "peft": __import__("peft").__version__},
}), flush=True)
