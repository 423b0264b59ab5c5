"""How a batch runs a model: prefill, one-token steps, lines joining and leaving.

GPT-2s (every model this project trains) get the lean forward of
``generation/decoding/fastgpt2.py``, whose lines may join a running batch; any other causal LM
goes through its Hugging Face forward with the library's cache behind the same calls, one batch
at a time, so the decoding loop does not care which it has.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from generation.decoding.capture import Recorder
from generation.decoding.fastgpt2 import GPT2Stepper, supports


class Stepper(Protocol):
    """A model decoding a batch of lines: each call returns next-token logits (lines × vocab).

    ``keep`` takes the lines that stay, in their new order. A stepper whose ``joins`` is true
    also takes new lines while others decode (``join``: continuous batching).
    """

    joins: bool

    def prefill(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
        new_tokens: int = 0,
    ) -> torch.Tensor:
        """``new_tokens``: how many steps are expected to follow (room to set aside, if any)."""
        ...

    def join(
        self, prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, new_tokens: int = 0
    ) -> torch.Tensor:
        """New lines after the current ones, one per prompt; their next-token logits (``joins``
        steppers only)."""
        ...

    def step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor: ...

    def step_and_join(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
        prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, new_tokens: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``step`` and ``join`` in one forward: the current lines' logits, then the new ones'
        (``joins`` steppers only)."""
        ...

    def keep(self, lines: torch.Tensor | Sequence[int]) -> None: ...

    def reset(self) -> None: ...

    def hold(self, logits: torch.Tensor) -> torch.Tensor:
        """The current lines' logits, where the stepper's own steps leave theirs."""
        ...

    def prepare(self, lines: int, positions: int, typed: bool) -> int:
        """Make recorded steps ahead of use (up to ``lines`` lines and ``positions``); how many."""
        ...


class HFStepper:
    """Any causal LM through its own forward, with its cache (the path GPT-2 no longer takes).

    The library's cache pads every line to one length, so lines cannot join mid-decode: such a
    model decodes one batch at a time.
    """

    joins = False

    def __init__(self, model: Any) -> None:
        self.model = model
        names = inspect.signature(model.forward).parameters
        # The keyword names differ across transformers versions.
        self.cache_name = "cache" if "cache" in names else "past_key_values"
        self.keep_name = "logits_to_keep" if "logits_to_keep" in names else "num_logits_to_keep"
        self.cache: Any = None
        self.mask = torch.zeros((0, 0), dtype=torch.long)
        self.next_positions = torch.zeros((0, 1), dtype=torch.long)

    def prefill(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
        new_tokens: int = 0,
    ) -> torch.Tensor:
        positions = (attention_mask.cumsum(-1) - 1).clamp_(min=0)
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
            token_type_ids=token_type_ids, use_cache=True, **{self.keep_name: 1},
        )
        self.cache = getattr(out, "cache", None) or out.past_key_values
        self.mask = attention_mask
        self.next_positions = positions[:, -1:] + 1
        return out.logits[:, -1, :]

    def step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        out = self.model(
            input_ids=input_ids, attention_mask=self.mask, position_ids=self.next_positions,
            token_type_ids=token_type_ids, use_cache=True, **{self.cache_name: self.cache},
        )
        self.next_positions = self.next_positions + 1
        return out.logits[:, -1, :]

    def join(
        self, prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, new_tokens: int = 0
    ) -> torch.Tensor:
        raise NotImplementedError("this model decodes one batch at a time (joins is False)")

    def step_and_join(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
        prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, new_tokens: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("this model decodes one batch at a time (joins is False)")

    def reset(self) -> None:
        self.cache = None

    def hold(self, logits: torch.Tensor) -> torch.Tensor:
        return logits  # steps are not recorded here: logits stay where they were computed

    def prepare(self, lines: int, positions: int, typed: bool) -> int:
        return 0

    def keep(self, lines: torch.Tensor | Sequence[int]) -> None:
        lines = torch.as_tensor(lines, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(lines)
        self.mask, self.next_positions = self.mask[lines], self.next_positions[lines]


def make_stepper(model: Any, graphs: bool = False, recorder: Recorder | None = None) -> Stepper:
    """The lean stepper for a GPT-2 (padded fixed-shape steps with ``graphs``, recorded by
    ``recorder``), the Hugging Face forward for anything else."""
    return GPT2Stepper(model, graphs, recorder) if supports(model) else HFStepper(model)
