"""CTranslate2 int8, the reference ``politico bench`` measures the int8 engine against.

CTranslate2 is the fastest CPU runtime for GPT-2 we know of, so the bench converts its own
random-weights model to it (int8 weights, nothing downloaded) and times the same prompts, in a
child process (:class:`AnchorProcess`; why: ``generation/measuring/bench.py``). Its GPT-2 takes no token type ids, so it decodes the controlled prompts without them:
one embedding addition per token less than the engine does. ``ctranslate2`` is an optional
package (``pip install .[bench]``); without it the bench skips these phases and says so.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def available() -> bool:
    """Whether the optional ``ctranslate2`` package is installed."""
    return importlib.util.find_spec("ctranslate2") is not None


def _vocabulary(tokenizer: Any, size: int) -> list[str]:
    """Token strings by id, padded to the model's ``size`` (the bench's tokenizer is smaller)."""
    known = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return [*known, *(f"<unused{i}>" for i in range(len(known), size))]


class Anchor:
    """A GPT-2 converted to CTranslate2 with int8 weights, sampling as the bench's engine does."""

    def __init__(self, model: Any, tokenizer: Any, folder: Path, threads: int) -> None:
        import ctranslate2
        from ctranslate2.converters.transformers import GPT2Loader

        vocabulary = _vocabulary(tokenizer, model.config.vocab_size)

        class Loader(GPT2Loader):
            def get_vocabulary(self, model: Any, tokenizer: Any) -> list[str]:
                return vocabulary

        spec = Loader()(model, tokenizer)
        spec.validate()
        spec.optimize(quantization="int8")
        folder.mkdir(parents=True, exist_ok=True)
        spec.save(str(folder))
        self.ctranslate2 = ctranslate2
        self.tokenizer = tokenizer
        self.generator = ctranslate2.Generator(
            str(folder), device="cpu", compute_type="int8", intra_threads=threads, inter_threads=1
        )

    def generate(self, prompts: list[list[int]], tokens: int, seed: int) -> int:
        """Sample ``tokens`` new tokens after each prompt (temperature 0.9, top_p 0.9), as one
        batch; returns how many tokens the shortest result has, to check none stopped early."""
        self.ctranslate2.set_random_seed(seed)
        results = self.generator.generate_batch(
            [self.tokenizer.convert_ids_to_tokens(p) for p in prompts],
            max_length=tokens, min_length=tokens, sampling_topk=0, sampling_topp=0.9,
            sampling_temperature=0.9, include_prompt_in_result=False,
        )
        return min(len(r.sequences_ids[0]) for r in results)


def _serve_anchor(folder: str, threads: int, pipe: Connection) -> None:
    """The child process of :class:`AnchorProcess`: convert, load, then time what it is sent."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    anchor = Anchor(model, tokenizer, Path(folder) / "ctranslate2-int8", threads)
    del model
    anchor.generate([tokenizer.encode("Hoy")], 2, seed=0)  # warm-up, untimed
    pipe.send("ready")
    while (job := pipe.recv()) is not None:
        prompts, tokens, seed = job
        started = time.perf_counter()
        fewest = anchor.generate(prompts, tokens, seed)
        pipe.send((time.perf_counter() - started, fewest))


class AnchorProcess:
    """An :class:`Anchor` in a process of its own (why: ``generation/measuring/bench.py``'s docstring):
    sent prompt ids, it answers how long each batch took, timed there."""

    def __init__(self, folder: Path, threads: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve_anchor, args=(str(folder), threads, child), daemon=True)
        self._process.start()
        child.close()
        self._pipe.recv()  # converted, loaded and warmed up

    def generate(self, prompts: list[list[int]], tokens: int, seed: int) -> tuple[float, int]:
        """One batch: its seconds, and the fewest new tokens of its tweets (none may stop early)."""
        self._pipe.send((prompts, tokens, seed))
        return self._pipe.recv()

    def close(self) -> None:
        self._pipe.send(None)
        self._process.join(timeout=60)
