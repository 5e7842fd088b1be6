"""TRL 1.13 side of bench/dpo-step.ts: the same checkpoint, data and settings; prints one RESULT line."""
import argparse
import json
import resource
import time
import warnings

import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import DPOConfig, DPOTrainer

warnings.filterwarnings("ignore")
p = argparse.ArgumentParser()
p.add_argument("--model")
p.add_argument("--data")
p.add_argument("--steps", type=int, default=4)
p.add_argument("--workload", default="A")
p.add_argument("--bf16", action="store_true")
p.add_argument("--gradient_checkpointing", action="store_true")
a = p.parse_args()


class Timer(TrainerCallback):
    def __init__(self):
        self.times, self.t0 = [], None

    def on_step_begin(self, args, state, control, **kw):
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        now = time.perf_counter()
        self.times.append(now - self.t0)
        self.t0 = now


tok = AutoTokenizer.from_pretrained(a.model)
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
settings = dict(per_device_train_batch_size=4, gradient_accumulation_steps=1, learning_rate=1e-6) if a.workload == "A" else \
    dict(per_device_train_batch_size=1, gradient_accumulation_steps=8, learning_rate=2e-4)
args = DPOConfig(output_dir="/tmp/trl-bench", max_steps=a.steps, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                 bf16=a.bf16, gradient_checkpointing=a.gradient_checkpointing, beta=0.1, max_length=512, lr_scheduler_type="constant", seed=42, dataloader_num_workers=0, **settings)
peft_config = LoraConfig(r=64, lora_alpha=16, lora_dropout=0.1, task_type="CAUSAL_LM") if a.workload == "B" else None
timer = Timer()
ds = load_dataset("json", data_files=a.data, split="train")
tr = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config, callbacks=[timer])
tr.train()
rest = sorted(timer.times[1:]) or timer.times
med = rest[len(rest) // 2]
tokens = tr._total_train_tokens / len(timer.times)
print("RESULT " + json.dumps({"s_per_step": med, "tokens_per_s": tokens / med, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
                              "times": timer.times}))
