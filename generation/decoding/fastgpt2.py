"""A lean GPT-2 forward for decoding: the model's own weights, a line-indexed KV cache, few ops.

At one or a few rows per step a decoding step's matrix products take a few milliseconds, and
Hugging Face's forward adds about as much again in Python: a ``DynamicCache`` that concatenates
keys and values every step, a 4-D attention mask rebuilt every step, module hooks, output
dataclasses. :class:`GPT2Stepper` runs the same layers (``Conv1D``, ``nn.Linear`` or the int8
layers of ``generation/decoding/int8.py``, float32 or half) with only what serving needs:

- one key/value buffer per layer, (2, line slots, heads, positions, head size), written in place;
- every line keeps its own length: a line's tokens sit at positions 0, 1, … of its slot whatever
  the other lines hold, so a request can **join** a running batch at any step (its prompt is fed
  into fresh slots, continuous batching) and a line that **leaves** frees its slot for the last
  line to move into (one line's keys are copied, not the whole cache);
- the attention mask is each line's length, compared with the positions in one op per step;
- the LM head applied where logits are wanted only, after a final layer norm, both in float32
  whatever the model's dtype: a bfloat16 head rounds logits of 30-130 (the 124M models') by
  0.125-0.25 nats, enough to reorder near-tied tokens; the float32 copy of the head costs
  vocabulary × width × 4 bytes (154 MB for the 124M models) on a half-precision GPU model;
- prompts, lengths and index lists sent to the device packed, one copy that does not block the
  host (``generation/decoding/upload.py``).

``extend`` feeds several tokens per line at once (a prompt, or a finished tweet being scored);
``step`` is ``extend`` with one token per line, ``join`` adds lines with their prompts, and
``step_and_join`` does both in one forward (the matrix products shared, the attention apart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from generation.decoding.capture import Recorder
from generation.decoding.cudagraph import StaticSteps, bucket, span_bucket
from generation.decoding.upload import Pack


@dataclass
class _Group:
    """New tokens of some lines going through the layers together: their hidden states
    (lines × new × width), positions (lines × new), the lines' slots and the span they see."""

    hidden: torch.Tensor
    positions: torch.Tensor
    lines: slice
    span: int


@dataclass
class _Fed:
    """Prompts sent to the device: ids and types (lines × longest, right-padded), their lengths
    and last positions (on the device and here), and the first line they go to."""

    ids: torch.Tensor
    types: torch.Tensor | None
    counts: torch.Tensor
    last: torch.Tensor
    host_counts: list[int]
    start: int = 0


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
    """Lines of a ``GPT2LMHeadModel`` (eval mode) decoding side by side, joining and leaving."""

    #: Lines may join a batch that is already decoding (``join``).
    joins = True

    def __init__(self, model: Any, graphs: bool = False, recorder: Recorder | None = None) -> None:
        """``graphs``: step through padded, fixed-shape steps (``static_step``), recorded as CUDA
        graphs by ``recorder`` (``generation/decoding/cudagraph.py``), eagerly without one."""
        body = model.transformer
        self.wte, self.wpe = body.wte, body.wpe
        self.blocks = list(body.h)
        config = model.config
        self.heads = config.n_head
        self.width = config.n_embd
        self.head_size = self.width // self.heads
        self.eps = config.layer_norm_epsilon
        self.max_positions = self.wpe.weight.shape[0]
        self.scaling = [block.attn.scaling for block in self.blocks]
        self.device = self.wte.weight.device
        self._final_norm(body.ln_f)
        self._head(model.lm_head)
        self.vocab = model.lm_head.out_features
        #: Per layer: keys and values, (2, line slots, heads, positions, head size).
        self.cache: list[torch.Tensor] = []
        self.lines = 0
        #: Tokens held by each line (its next position), on the device and mirrored here, so
        #: the attention span is known without reading the device.
        self.lengths = torch.zeros(0, dtype=torch.long, device=self.device)
        self.host_lengths: list[int] = []
        self.graphs = StaticSteps(recorder) if graphs else None

    def _final_norm(self, ln_f: torch.nn.LayerNorm) -> None:
        """The final layer norm's parameters in float32 (the same tensors when already so)."""
        self.ln_weight = ln_f.weight.detach().float()
        self.ln_bias = ln_f.bias.detach().float()

    def _head(self, head: Any) -> None:
        """The LM head as a float32 matrix, or (int8) the model's own layer, which takes float32."""
        weight = getattr(head, "weight", None)
        if isinstance(head, torch.nn.Linear) and weight is not None and weight.is_floating_point():
            self.head_weight: torch.Tensor | None = weight.detach().float()
            self.head_bias = None if head.bias is None else head.bias.detach().float()
            self.head = None
        else:
            self.head_weight = self.head_bias = None
            self.head = head

    # --- the calls the decoding loop makes ------------------------------------------------------

    def prefill(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
        new_tokens: int = 0,
    ) -> torch.Tensor:
        """Start over with the (left- or right-) padded prompts; each line's next-token logits."""
        self.reset()
        valid = attention_mask.bool().cpu()
        prompts = [input_ids[i][valid[i].to(input_ids.device)].tolist() for i in range(len(input_ids))]
        types = None
        if token_type_ids is not None:
            types = [token_type_ids[i][valid[i].to(token_type_ids.device)].tolist() for i in range(len(input_ids))]
        return self.join(prompts, types, new_tokens)

    def reset(self) -> None:
        """Drop every line (the cache's memory stays for the next ones)."""
        self.lines = 0
        self.host_lengths = []

    def join(
        self, prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, new_tokens: int = 0
    ) -> torch.Tensor:
        """Add one line per prompt after the current ones; their next-token logits.

        ``new_tokens``: how many steps these lines may take, so the cache has the room now
        (growing it mid-decode would copy every layer).
        """
        fed = self._open(prompts, types, new_tokens)
        hidden = self.extend(fed.ids, fed.types, fed.counts, fed.start, fed.host_counts)
        return self.logits(hidden[torch.arange(len(prompts), device=self.device), fed.last])

    def _open(self, prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None,
              new_tokens: int) -> _Fed:
        """Empty line slots after the current ones for ``prompts`` (sent padded, with their
        lengths), room for ``new_tokens`` steps after them and for the current lines' next
        token."""
        fed = self._padded(prompts, types)
        fed.start = self.lines
        count = len(prompts)
        self._reserve(fed.start + count, max(fed.ids.shape[1] + new_tokens, max(self.host_lengths, default=0) + 1))
        self.lengths[fed.start:fed.start + count].zero_()
        self.host_lengths[fed.start:] = [0] * count
        self.lines = fed.start + count
        return fed

    def step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        """Append one token to every line (lines × 1); the next-token logits of each line."""
        if self.graphs is not None:
            return self.graphs.step(self, input_ids, token_type_ids)
        hidden = self.extend(input_ids, token_type_ids, None)
        return self.logits(hidden[:, -1])

    def hold(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits of the current lines, put where the graphed steps write theirs (as they are
        without graphs): the batch reads one buffer whichever way a step went."""
        return logits if self.graphs is None else self.graphs.hold(self, logits)

    def prepare(self, lines: int, positions: int, typed: bool) -> int:
        """Record the graphed step of every bucket up to ``lines`` lines and ``positions``
        positions now, before any line decodes; how many were recorded (0 without graphs)."""
        if self.graphs is None or self.graphs.recorder is None:
            return 0
        return self.graphs.prepare(self, lines, positions, typed)

    def step_and_join(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
        prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, new_tokens: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``step`` for the current lines and ``join`` for ``prompts`` in one forward: the
        next-token logits of the current lines, then of the new ones."""
        fed = self._open(prompts, types, new_tokens)
        lines = fed.start
        current = slice(0, lines)
        step_positions = self.lengths[current, None]
        prompt_positions = torch.arange(fed.ids.shape[1], device=self.device).expand(len(prompts), -1)
        step_hidden, prompt_hidden = self._layers([
            _Group(self._embed(input_ids, step_positions, token_type_ids), step_positions, current,
                   max(self.host_lengths[current]) + 1),
            _Group(self._embed(fed.ids, prompt_positions, fed.types), prompt_positions,
                   slice(lines, self.lines), fed.ids.shape[1]),
        ])
        self.lengths[current] += 1
        self.lengths[lines:self.lines] = fed.counts
        self.host_lengths = [n + 1 for n in self.host_lengths[:lines]] + fed.host_counts
        last = prompt_hidden[torch.arange(len(prompts), device=self.device), fed.last]
        return self.logits(step_hidden[:, -1]), self.logits(last)

    def keep(self, lines: torch.Tensor | Sequence[int]) -> None:
        """Keep ``lines`` (old indices; repeats allowed: a line forks) as the new lines 0, 1, ….

        Only lines that change slot are copied: with a leaving line replaced by the last one,
        that is one line's keys per layer.
        """
        order = lines.tolist() if isinstance(lines, torch.Tensor) else list(lines)
        moved = [j for j, old in enumerate(order) if old != j]
        self._reserve(len(order), 0)
        if moved:
            pack = Pack()
            pack.add("to", moved, torch.long)
            pack.add("source", [order[j] for j in moved], torch.long)
            sent = pack.send(self.device)
            to, source = sent["to"], sent["source"]
            for kv in self.cache:
                kv[:, to] = kv[:, source]
            self.lengths[to] = self.lengths[source]
        self.host_lengths = [self.host_lengths[old] for old in order]
        self.lines = len(order)

    # --- the forward ----------------------------------------------------------------------------

    def extend(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
        counts: Sequence[int] | torch.Tensor | None, start: int = 0, host_counts: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Feed lines ``start …`` the next tokens ``input_ids`` (lines × new, right-padded):
        their hidden states (lines × new × width); each line then holds ``counts[i]`` more
        tokens (``None``: all of them; a device tensor comes with its ``host_counts``). Padding
        is written past a line's end and overwritten later; no real token ever attends to it."""
        count, new = input_ids.shape
        lines = slice(start, start + count)
        span = max(self.host_lengths[lines]) + new
        self._reserve(self.lines, span)
        offsets = torch.arange(new, device=self.device)
        positions = self.lengths[lines, None] + offsets  # (lines, new)
        hidden = self._embed(input_ids, positions, token_type_ids)
        (hidden,) = self._layers([_Group(hidden, positions, lines, span)])
        if counts is None:
            self.lengths[lines] += new
            self.host_lengths[lines] = [n + new for n in self.host_lengths[lines]]
        else:
            if not isinstance(counts, torch.Tensor):
                host_counts, counts = list(counts), torch.tensor(list(counts), device=self.device)
            assert host_counts is not None
            self.lengths[lines] += counts
            self.host_lengths[lines] = [n + c for n, c in zip(self.host_lengths[lines], host_counts, strict=True)]
        return hidden

    def _padded(self, prompts: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None) -> _Fed:
        """Prompts right-padded on the device (ids, types), their lengths and last positions,
        in one packed copy."""
        counts = [len(p) for p in prompts]
        width = max(counts)
        pack = Pack()
        pack.add("ids", [t for p in prompts for t in (*p, *([0] * (width - len(p))))], torch.long,
                 (len(prompts), width))
        if types is not None:
            pack.add("types", [t for p in types for t in (*p, *([0] * (width - len(p))))], torch.long,
                     (len(prompts), width))
        pack.add("counts", counts, torch.long)
        pack.add("last", [c - 1 for c in counts], torch.long)
        sent = pack.send(self.device)
        return _Fed(sent["ids"], sent.get("types"), sent["counts"], sent["last"], counts)

    def static_step(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                    active: torch.Tensor, span: int, out: torch.Tensor) -> None:
        """``step`` for the first ``len(input_ids)`` slots with every shape fixed (attention over
        the first ``span`` positions) and nothing read from the host, the logits written into
        ``out``: what a CUDA graph captures (``generation/decoding/cudagraph.py``). Slots past
        the real lines (padding up to a captured size) compute on free memory and do not
        advance (``active`` is 0)."""
        count = input_ids.shape[0]
        positions = self.lengths[:count, None].clamp(max=span - 1)
        hidden = self._embed(input_ids, positions, token_type_ids)
        (hidden,) = self._layers([_Group(hidden, positions, slice(0, count), span)])
        self.lengths[:count] += active
        self.logits(hidden[:, -1], out)

    def _embed(self, input_ids: torch.Tensor, positions: torch.Tensor,
               token_type_ids: torch.Tensor | None) -> torch.Tensor:
        hidden = (F.embedding(input_ids, self.wte.weight)
                  + F.embedding(positions.clamp(max=self.max_positions - 1), self.wpe.weight))
        if token_type_ids is not None:
            # GPT-2 looks token types up in the token embedding (the controlled models' control tokens).
            hidden = hidden + F.embedding(token_type_ids, self.wte.weight)
        return hidden

    def _layers(self, groups: list[_Group]) -> list[torch.Tensor]:
        """Every block over the groups' new tokens (each lines × new × width): their keys and
        values go to their lines' slots at ``positions``, and each query sees its line's
        positions up to its own. The groups share every matrix product (the weights are read
        once per layer), and each attends on its own (one token per line while decoding, a
        whole prompt per joining line)."""
        width = self.width
        sizes = [g.hidden.shape[0] * g.hidden.shape[1] for g in groups]
        masks = [self._mask(g) for g in groups]
        slots = [torch.arange(g.lines.start, g.lines.stop, device=self.device)[:, None].expand_as(g.positions)
                 for g in groups]
        hidden = torch.cat([g.hidden.reshape(-1, width) for g in groups]) if len(groups) > 1 else (
            groups[0].hidden.reshape(-1, width))
        for block, kv, scaling in zip(self.blocks, self.cache, self.scaling, strict=True):
            attn, mlp = block.attn, block.mlp
            x = F.layer_norm(hidden, (width,), block.ln_1.weight, block.ln_1.bias, self.eps)
            outs = []
            for qkv, g, mask, slot in zip(attn.c_attn(x).split(sizes), groups, masks, slots, strict=True):
                count, new = g.positions.shape
                qkv = qkv.view(count, new, 3, self.heads, self.head_size)
                kv[:, slot, :, g.positions] = qkv[:, :, 1:]
                out = F.scaled_dot_product_attention(
                    qkv[:, :, 0].transpose(1, 2), kv[0, g.lines, :, : g.span], kv[1, g.lines, :, : g.span],
                    attn_mask=mask, scale=scaling,
                )
                outs.append(out.transpose(1, 2).reshape(count * new, width))
            hidden = hidden + attn.c_proj(torch.cat(outs) if len(outs) > 1 else outs[0])
            x = F.layer_norm(hidden, (width,), block.ln_2.weight, block.ln_2.bias, self.eps)
            hidden = hidden + mlp.c_proj(mlp.act(mlp.c_fc(x)))
        return [h.view(g.hidden.shape) for h, g in zip(hidden.split(sizes), groups, strict=True)]

    def _mask(self, group: _Group) -> torch.Tensor:
        """Which cached positions each new token sees: its line's, up to its own."""
        allowed = (torch.arange(group.span, device=self.device) <= group.positions[:, :, None])[:, None]
        if self.device.type != "cpu":
            return allowed
        # On the CPU an additive mask, built once per call, spares the kernel converting the
        # boolean one in every layer.
        return torch.zeros(allowed.shape, dtype=group.hidden.dtype, device=self.device).masked_fill_(
            ~allowed, float("-inf"))

    def logits(self, hidden: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits of hidden states (any leading shape; 2-D with ``out``), float32:
        the final layer norm and the head run in float32 whatever the model's dtype."""
        x = F.layer_norm(hidden.float(), (self.width,), self.ln_weight, self.ln_bias, self.eps)
        if self.head_weight is None:
            assert self.head is not None
            logits = self.head(x)
            return logits if out is None else out.copy_(logits)
        if out is None:
            return F.linear(x, self.head_weight, self.head_bias)
        torch.mm(x, self.head_weight.t(), out=out)
        return out if self.head_bias is None else out.add_(self.head_bias)

    def _reserve(self, lines: int, positions: int) -> None:
        """Room for ``lines`` line slots of ``positions`` positions; grows by doubling the slots
        (rarely: a batch's size settles) and to the positions asked."""
        have_lines = self.cache[0].shape[1] if self.cache else 0
        have_positions = self.cache[0].shape[3] if self.cache else 0
        if lines <= have_lines and positions <= have_positions:
            return
        slots = max(lines, 2 * have_lines if lines > have_lines else have_lines, 1)
        span = max(positions, have_positions, 16)
        if self.graphs is not None:  # whole buckets: a graphed cache moves rarely
            slots, span = bucket(slots), span_bucket(span, max(self.max_positions, span))
        dtype = self.wte.weight.dtype if self.wte.weight.is_floating_point() else torch.float32
        grown = []
        for i in range(len(self.blocks)):
            # Zeros, not empty: a masked key still multiplies its value by 0, and 0 × NaN is NaN.
            bigger = torch.zeros((2, slots, self.heads, span, self.head_size), dtype=dtype, device=self.device)
            if self.cache and self.lines:
                old = self.cache[i]
                bigger[:, : self.lines, :, :have_positions] = old[:, : self.lines]
            grown.append(bigger)
        self.cache = grown
        lengths = torch.zeros(slots, dtype=torch.long, device=self.device)
        lengths[: self.lines] = self.lengths[: self.lines]
        self.lengths = lengths
