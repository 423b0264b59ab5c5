"""What every training command shares: options, a fresh GPT-2, the padding collator, the Trainer.

The loop itself is Hugging Face's ``Trainer``: it already does progress bars, seeds, checkpoints
and resume, mixed precision and several GPUs (launched with ``torchrun`` or ``accelerate
launch``), so the commands only build datasets and models and hand them over.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from generation.prompts import CONTEXT_MARKERS, IGNORE_INDEX, TWEET
from training.errors import InputError

EOS = "<|endoftext|>"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainOptions:
    """Loop settings common to pretrain, finetune and contextual."""

    out: Path
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 5e-4
    warmup_steps: int = 0
    weight_decay: float = 0.01
    seed: int = 42
    precision: str = "auto"
    save_steps: int = 500
    save_total_limit: int = 2
    logging_steps: int = 50
    eval_batch_size: int = 32
    resume: bool = False
    group_by_length: bool = False
    threads: int = 0
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelShape:
    """GPT-2 hyper-parameters for a model trained from scratch."""

    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_positions: int = 128
    dropout: float = 0.1


def set_threads(threads: int) -> None:
    """CPU threads for torch (0 leaves torch's default: all cores)."""
    if threads > 0:
        torch.set_num_threads(threads)


def precision_flags(precision: str) -> dict[str, bool]:
    """``bf16``/``fp16`` Trainer flags; ``auto`` = bf16 on GPUs that have it, fp16 on others,
    fp32 on CPU."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "auto":
        if not torch.cuda.is_available():
            precision = "fp32"
        else:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision != "fp32" and not torch.cuda.is_available():
        raise InputError(f"--precision {precision} needs a CUDA GPU (use fp32 on CPU)")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def load_tokenizer(path: str | Path):
    """A saved tokenizer, with the thesis's special tokens added when it lacks them.

    Models trained here already have them; an outside base model (e.g. English ``gpt2``) gets
    ``[TWEET]`` as BOS, the six context markers and EOS as pad, like the thesis did.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: no tokenizer there ({exc})") from exc
    special: dict[str, Any] = {}
    if tokenizer.bos_token != TWEET:
        special["bos_token"] = TWEET
    if tokenizer.eos_token is None:
        special["eos_token"] = EOS
    missing = [m for m in CONTEXT_MARKERS if m not in tokenizer.get_vocab()]
    if missing:
        special["additional_special_tokens"] = missing
    if special:
        tokenizer.add_special_tokens(special)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str | Path, tokenizer):
    """A saved causal LM, its embeddings resized to the tokenizer when tokens were added."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: no model there ({exc})") from exc
    if model.get_input_embeddings().num_embeddings != len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    sync_special_ids(model, tokenizer)
    return model


def new_model(tokenizer, shape: ModelShape):
    """A randomly initialised GPT-2 of ``shape`` over ``tokenizer``'s vocabulary."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if shape.n_embd % shape.n_head:
        raise InputError(f"n_embd {shape.n_embd} is not a multiple of n_head {shape.n_head}")
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=shape.n_positions, n_embd=shape.n_embd,
        n_layer=shape.n_layer, n_head=shape.n_head, resid_pdrop=shape.dropout,
        embd_pdrop=shape.dropout, attn_pdrop=shape.dropout, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    sync_special_ids(model, tokenizer)
    return model


def sync_special_ids(model, tokenizer) -> None:
    """Model and generation config carry the tokenizer's BOS/EOS/pad ids (generate reads them)."""
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(tokenizer, name)
        setattr(model.config, name, value)
        if model.generation_config is not None:
            setattr(model.generation_config, name, value)


class PadCollator:
    """Right-pads a batch: pad id for inputs, 0 for token types, ``IGNORE_INDEX`` for labels."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        fill = {"input_ids": self.pad_id, "token_type_ids": 0, "labels": IGNORE_INDEX}
        batch: dict[str, list[list[int]]] = {"attention_mask": []}
        for f in features:
            gap = width - len(f["input_ids"])
            for key, value in fill.items():
                if key in f:
                    batch.setdefault(key, []).append(list(f[key]) + [value] * gap)
            batch["attention_mask"].append([1] * len(f["input_ids"]) + [0] * gap)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def steps_for(examples: int, options: TrainOptions) -> int:
    """Optimizer steps for ``options.epochs`` passes over ``examples`` (all processes together)."""
    per_step = options.batch_size * options.grad_accum * world_size()
    return max(1, math.ceil(options.epochs * math.ceil(examples / per_step)))


def train(model, tokenizer, train_dataset, eval_dataset, options: TrainOptions, max_steps: int) -> dict:
    """Train with the Trainer, save the final model and tokenizer in ``options.out``.

    Returns the training and (when there is a validation set) evaluation metrics, which are
    also written to ``options.out / "run.json"`` together with the options, for the model card.
    """
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    set_threads(options.threads)
    out = Path(options.out)
    resume_from = None
    if options.resume:
        resume_from = get_last_checkpoint(str(out)) if out.is_dir() else None
        if resume_from is None:
            raise InputError(f"--resume: no checkpoint in {out}")
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.eval_batch_size,
        gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.lr,
        warmup_steps=options.warmup_steps,
        weight_decay=options.weight_decay,
        lr_scheduler_type="cosine",
        seed=options.seed,
        data_seed=options.seed,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=options.save_total_limit,
        logging_steps=options.logging_steps,
        eval_strategy="no",
        report_to="none",
        disable_tqdm=not options.progress,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if options.group_by_length else "random",
        **precision_flags(options.precision),
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        data_collator=PadCollator(tokenizer.pad_token_id), processing_class=tokenizer,
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    metrics: dict[str, Any] = dict(result.metrics)
    if eval_dataset is not None:
        evaluation = trainer.evaluate()
        metrics.update(evaluation)
        metrics["eval_perplexity"] = math.exp(min(evaluation["eval_loss"], 50.0))
    if trainer.is_world_process_zero():
        trainer.save_model(str(out))
        record = {"options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
                  "max_steps": max_steps, "metrics": metrics}
        (out / "run.json").write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    return metrics
