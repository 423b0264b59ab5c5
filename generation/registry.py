"""Configured models, loaded on first use and kept in memory.

Loading a GPT-2 takes seconds and most processes use one model, so nothing loads until a request
names it; after that the model stays. Loading is locked per model so concurrent first requests
load it once. Paths that look like folders are only ever read from disk: a typo in a folder name
must say "folder not found", not turn into a hub download attempt.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from generation.decoding.capture import CAPTURE_LOCK
from generation.decoding.int8 import quantize_int8
from generation.decoding.stepper import make_stepper
from generation.settings import ModelSpec
from generation.types import GenerationError, UnknownModel


class ModelLoadError(GenerationError):
    """A configured model could not be loaded (missing folder, broken files, no hub access)."""


T = TypeVar("T")


def on_own_thread(work: Callable[[], T]) -> T:
    """``work()`` run on a thread that ends with it (its result returned, its error raised).

    torch's OpenMP runtime (libgomp) gives every thread that runs parallel work a team of
    worker threads, kept until that thread ends; once the teams' threads outnumber the cores it
    stops spin-waiting between parallel regions, so every op of a decoding step pays a wake-up.
    Measured on 2 cores: 220 ms per int8 tweet on a thread whose team is the only one, 360 ms
    once any other thread has run torch work and lives on. Work done here (loading a model,
    the bench's phases) leaves no team behind for the decoding thread to share the cores with.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # re-raised on the caller's thread
            error.append(exc)

    thread = threading.Thread(target=run, name="torch-work")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@dataclass
class LoadedModel:
    """A model ready to decode: weights in eval mode on their device, and the tokenizer."""

    name: str
    spec: ModelSpec
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype

    @property
    def max_positions(self) -> int | None:
        """The longest sequence the model's position embeddings allow (None when unbounded)."""
        config = self.model.config
        for key in ("n_positions", "max_position_embeddings"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None


def pick_device(requested: str) -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU; anything else is taken as asked."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32 on the CPU (half precision is slow there), bf16/fp16 on accelerators."""
    if requested != "auto":
        return getattr(torch, requested)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def looks_local(path: str) -> bool:
    """Whether ``path`` names a folder rather than a hub id (``owner/name``)."""
    if Path(path).expanduser().exists() or os.path.isabs(path):
        return True
    if path.startswith((".", "~")) or "\\" in path:
        return True
    return path.count("/") > 1


def fuse_activations(model: torch.nn.Module) -> int:
    """Swap GPT-2's tanh GELU, written out in Python ops, for torch's fused kernel.

    Same formula, so outputs differ only by rounding; on a CPU the five separate ops cost
    about a sixth of a batched decoding step. Returns how many modules were swapped.
    """
    from transformers.activations import NewGELUActivation

    swapped = 0
    for module in model.modules():
        for child_name, child in module.named_children():
            if isinstance(child, NewGELUActivation):
                setattr(module, child_name, torch.nn.GELU(approximate="tanh"))
                swapped += 1
    return swapped


class ModelRegistry:
    """Named models from the config, each loaded lazily, once, with a warm-up pass."""

    def __init__(self, specs: dict[str, ModelSpec], threads: int = 0, warmup: bool = True) -> None:
        self.specs = dict(specs)
        self.warmup = warmup
        if threads > 0:
            torch.set_num_threads(threads)
        self._loaded: dict[str, LoadedModel] = {}
        self._locks = {name: threading.Lock() for name in self.specs}

    def spec(self, name: str) -> ModelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise UnknownModel(f"unknown model {name!r}; configured: {sorted(self.specs)}") from None

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def get(self, name: str) -> LoadedModel:
        """The loaded model, loading it first if needed (blocking: call it off the event loop)."""
        spec = self.spec(name)
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        with self._locks[name]:
            loaded = self._loaded.get(name)
            if loaded is None:
                # Loading runs torch work (quantizing, the warm-up pass): see on_own_thread.
                loaded = on_own_thread(lambda: self._load(name, spec))
                self._loaded[name] = loaded
        return loaded

    def _load(self, name: str, spec: ModelSpec) -> LoadedModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = spec.path
        local = looks_local(path)
        if local:
            folder = Path(path).expanduser()
            if not folder.is_dir():
                raise ModelLoadError(f"model {name!r}: folder {str(folder)!r} not found")
            path = str(folder)
        device = pick_device(spec.device)
        if spec.quantize == "int8" and device.type != "cpu":
            raise ModelLoadError(
                f"model {name!r}: quantize = 'int8' runs on the CPU only, but device "
                f"{spec.device!r} picked {device.type}: set device = 'cpu' or drop quantize"
            )
        dtype = pick_dtype(spec.dtype, device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=local)
        except Exception as exc:  # transformers raises OSError, ValueError, EnvironmentError...
            where = "folder" if local else "hub id"
            raise ModelLoadError(f"model {name!r}: cannot load {where} {path!r}: {exc}") from exc
        # On a GPU, not while another model's thread records a graph (decoding/capture.py).
        with CAPTURE_LOCK if device.type == "cuda" else contextlib.nullcontext():
            model = model.to(device=device, dtype=dtype).eval()
            fuse_activations(model)
            if spec.quantize == "int8":
                quantize_int8(model)
            loaded = LoadedModel(name, spec, model, tokenizer, device, dtype)
            if self.warmup:
                self._warm_up(loaded)
            if device.type == "cuda":  # the weights are ready before another stream reads them
                torch.cuda.synchronize(device)
        # The model's objects live as long as the process; freezing them keeps the collector's
        # full passes short, and those hold the GIL, so they would stall the event loop.
        gc.collect()
        gc.freeze()
        return loaded

    @staticmethod
    @torch.inference_mode()
    def _warm_up(loaded: LoadedModel) -> None:
        """A small prompt through the forward decoding will use (the lean one for a GPT-2, not
        Hugging Face's), so the first real request does not pay for lazy initialisation."""
        typed = loaded.spec.kind == "controlled"
        ids = torch.zeros((1, 4), dtype=torch.long, device=loaded.device)
        make_stepper(loaded.model).prefill(ids, torch.ones_like(ids), ids if typed else None, 1)
