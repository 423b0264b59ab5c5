"""A lean GPT-2 forward for decoding: the model's own weights, a static KV cache, few ops.

At one or a few rows per step a decoding step's matrix products take a few milliseconds, and
Hugging Face's forward adds about as much again in Python: a ``DynamicCache`` that concatenates
keys and values every step, a 4-D attention mask rebuilt from the 2-D one every step, module
hooks, output dataclasses. :class:`GPT2Stepper` runs the same layers (``Conv1D``, ``nn.Linear``
or the int8 layers of ``generation/decoding/int8.py``, float32 or half) with only what decoding needs:

- one key/value buffer per layer, written in place, whose capacity doubles when full, so a step
  copies one token's keys instead of the whole cache;
- a boolean padding mask kept beside the cache (left-padded prompts), and each line's next
  position, so a step is given only its new tokens (and their token types);
- the LM head applied to the last position only.

``keep(lines)`` drops finished lines from the cache, mask and positions together.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F


def supports(model: Any) -> bool:
    """Whether ``model`` is a GPT-2 language model this forward computes exactly.

    Cross-attention and the upcast-and-reorder attention variant are left to Hugging Face.
    """
    config = getattr(model, "config", None)
    return (
        getattr(config, "model_type", None) == "gpt2"
        and hasattr(model, "transformer") and hasattr(model, "lm_head")
        and not getattr(config, "add_cross_attention", False)
        and not getattr(config, "reorder_and_upcast_attn", False)
    )


class GPT2Stepper:
    """Prefill then one-token steps of a ``GPT2LMHeadModel`` (eval mode, no dropout)."""

    def __init__(self, model: Any) -> None:
        body = model.transformer
        self.wte, self.wpe, self.ln_f, self.head = body.wte, body.wpe, body.ln_f, model.lm_head
        self.blocks = list(body.h)
        config = model.config
        self.heads = config.n_head
        self.width = config.n_embd
        self.eps = config.layer_norm_epsilon
        self.scaling = [block.attn.scaling for block in self.blocks]
        #: Per layer: keys and values, (2, lines, heads, capacity, head size); filled up to ``length``.
        self.cache: list[torch.Tensor] = []
        self.length = 0
        #: Which cache positions each line may attend to (False: left padding), (lines, capacity).
        self.mask = torch.zeros((0, 0), dtype=torch.bool)
        self.next_positions = torch.zeros(0, dtype=torch.long)

    def prefill(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
        new_tokens: int = 0,
    ) -> torch.Tensor:
        """Run the left-padded prompts (lines × width); the next-token logits of each line.

        The cache starts with room for ``new_tokens`` more: growing it mid-decode copies every
        layer's keys and values, into fresh memory the kernel must first map.
        """
        lines, width = input_ids.shape
        valid = attention_mask.bool()
        positions = (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)
        hidden = self._embed(input_ids, positions, token_type_ids)
        head_size = self.width // self.heads
        self.cache = [
            hidden.new_empty((2, lines, self.heads, max(width + new_tokens, 16), head_size))
            for _ in self.blocks
        ]
        self.mask = torch.zeros((lines, self.cache[0].shape[3]), dtype=torch.bool, device=valid.device)
        self.mask[:, :width] = valid
        self.length = width
        self.next_positions = positions[:, -1] + 1
        causal = torch.ones((width, width), dtype=torch.bool, device=valid.device).tril_()
        # A padding query attends to itself only: every row of the softmax has a term, so no NaN
        # reaches the cache (real queries never look at padding).
        allowed = (causal & valid[:, None, :]) | torch.eye(width, dtype=torch.bool, device=valid.device)
        hidden = self._layers(hidden, allowed[:, None], 0)
        return self._logits(hidden[:, -1])

    def step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        """Append one token per line (lines × 1); the next-token logits of each line."""
        if self.length == self.mask.shape[1]:
            self._grow()
        position = self.length
        self.mask[:, position] = True
        hidden = self._embed(input_ids, self.next_positions[:, None], token_type_ids)
        self.length += 1
        self.next_positions = self.next_positions + 1
        hidden = self._layers(hidden, self.mask[:, None, None, : self.length], position)
        return self._logits(hidden[:, -1])

    def keep(self, lines: torch.Tensor) -> None:
        """Keep only ``lines`` (indices into the current lines, in their new order)."""
        self.cache = [kv.index_select(1, lines) for kv in self.cache]
        self.mask = self.mask.index_select(0, lines)
        self.next_positions = self.next_positions.index_select(0, lines)

    def _grow(self) -> None:
        """Double every layer's capacity (amortised: a step rarely pays for a copy)."""
        capacity = 2 * self.mask.shape[1]
        grown = []
        for kv in self.cache:
            bigger = kv.new_empty((*kv.shape[:3], capacity, kv.shape[4]))
            bigger[:, :, :, : self.length] = kv[:, :, :, : self.length]
            grown.append(bigger)
        self.cache = grown
        mask = self.mask.new_zeros((self.mask.shape[0], capacity))
        mask[:, : self.length] = self.mask[:, : self.length]
        self.mask = mask

    def _embed(
        self, input_ids: torch.Tensor, positions: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        # GPT-2 looks token types up in the token embedding (the controlled models' control tokens).
        hidden = F.embedding(input_ids, self.wte.weight) + F.embedding(positions, self.wpe.weight)
        if token_type_ids is not None:
            hidden = hidden + F.embedding(token_type_ids, self.wte.weight)
        return hidden

    def _layers(self, hidden: torch.Tensor, allowed: torch.Tensor, start: int) -> torch.Tensor:
        """Every block over ``hidden`` (lines × new × width), whose tokens go to the cache at
        ``start``; ``allowed`` says which cached positions each new token sees."""
        lines, new, _ = hidden.shape
        end = start + new
        shape = (lines, new, 3, self.heads, self.width // self.heads)
        for block, kv, scaling in zip(self.blocks, self.cache, self.scaling, strict=True):
            attn, mlp = block.attn, block.mlp
            x = F.layer_norm(hidden, (self.width,), block.ln_1.weight, block.ln_1.bias, self.eps)
            qkv = attn.c_attn(x).view(shape).permute(2, 0, 3, 1, 4)  # (3, lines, heads, new, size)
            kv[:, :, :, start:end] = qkv[1:]
            out = F.scaled_dot_product_attention(
                qkv[0], kv[0, :, :, :end], kv[1, :, :, :end], attn_mask=allowed, scale=scaling
            )
            hidden = hidden + attn.c_proj(out.transpose(1, 2).reshape(lines, new, self.width))
            x = F.layer_norm(hidden, (self.width,), block.ln_2.weight, block.ln_2.bias, self.eps)
            hidden = hidden + mlp.c_proj(mlp.act(mlp.c_fc(x)))
        return hidden

    def _logits(self, last: torch.Tensor) -> torch.Tensor:
        return self.head(F.layer_norm(last, (self.width,), self.ln_f.weight, self.ln_f.bias, self.eps))
