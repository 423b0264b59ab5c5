"""int8 weights for a GPT-2's matrix multiplications on the CPU (``quantize = "int8"``).

Every ``Conv1D`` (GPT-2's attention and MLP projections, weights stored input × output) and
``nn.Linear`` (the LM head) becomes an :class:`Int8Linear`: its weight rounded to int8 with one
scale per output feature, and at each call the input rounded to int8 with one scale per row (per
token), multiplied by an int8 GEMM (int32 accumulation; two kernels, below) and scaled
back. A decoding step reads a quarter of the bytes and the int8 GEMM does 2-4x the work per
cycle of the float one, which is where the speed comes from.

Why this and not a library (measured on the 124M model, per decoding step, one thread):

- ``torchao`` (the successor of ``torch.ao.quantization``): its int8 configs run on the CPU in
  eager mode 3-4x *slower* than float32 (its fast paths need ``torch.compile`` and a C++ compiler
  on the serving machine), and its CUDA extensions print load errors against the pinned torch.
- ``torch.ao.quantization.quantize_dynamic`` (fbgemm): deprecated, and it quantizes a batch's
  activations with one scale for all rows, so a row's tokens would depend on which requests
  share its batch. The ``fbgemm`` kernel below calls the same GEMM with one scale per row.
- CTranslate2: fast, but its GPT-2 has no token type ids, which the controlled models need; the
  bench keeps it as the reference to beat.

One scale per row keeps a row's result independent of its batch: integer accumulation is exact,
so the same prompt and seed give the same tweet alone or among 31 others.

Two kernels, the same weights:

- ``fbgemm`` (x86 with AVX2 or better, the default there): fbgemm's int8 GEMM, reached through
  ``torch.ops.quantized`` with a prepacked weight and a float input it quantizes with the scale
  and zero point it is given. AVX2 multiplies unsigned by signed bytes and adds pairs into int16,
  which saturates for full-range inputs, so the input is rounded to **7 bits** (−63…63, shifted
  to 1…127): a pair then sums to at most 2·127·127 < 2¹⁵, exact on every x86. Measured on the
  124M model: as fast as ``_int_mm`` at one row, 5-25% faster at 32 rows, on AVX-512 VNNI too;
  held-out perplexity +0.17% against float32 (+0.03% with 8 bits; docs/benchmarks.md).
- ``int_mm`` (elsewhere, or when the op is missing): full 8-bit input through ``torch._int_mm``.

The quantized tensor type fbgemm's packing needs is deprecated in torch 2.13 (a warning at
load, silenced here); if a later torch drops it or the op, the layers fall back to ``int_mm``.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import nn

#: The symmetric int8 range (−127…127): −128 is left out so that negating never overflows.
_LEVELS = 127.0
#: The fbgemm kernel's input range (7 bits, see the module's docstring) and its zero point.
_INPUT_LEVELS = 63.0
_ZERO_POINT = 64

Kernel = Literal["fbgemm", "int_mm"]


def fbgemm_available() -> bool:
    """Whether fbgemm's int8 GEMM is built in and this CPU runs it (x86, AVX2 or better)."""
    return (
        torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
        and "fbgemm" in torch.backends.quantized.supported_engines
        and hasattr(torch.ops.quantized, "linear_with_input_q_dq_qweight_dq_output_fp32")
        and hasattr(torch, "_make_per_channel_quantized_tensor")
    )


def default_kernel() -> Kernel:
    return "fbgemm" if fbgemm_available() else "int_mm"


def _pack(quantized: torch.Tensor, scale: torch.Tensor) -> torch.ScriptObject:
    """The int8 weight (per-output scales) prepacked for fbgemm; no bias (added after scaling)."""
    zeros = torch.zeros(len(scale), dtype=torch.long)
    engine = torch.backends.quantized.engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the quantized tensor type's deprecation
        weight = torch._make_per_channel_quantized_tensor(quantized, scale.double(), zeros, 0)
        try:
            torch.backends.quantized.engine = "fbgemm"
            return torch.ops.quantized.linear_prepack(weight, None)
        finally:
            torch.backends.quantized.engine = engine


def _quantize_rows(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``matrix`` (rows × columns, float) as int8 and one float scale per row, symmetric."""
    scale = matrix.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / _LEVELS
    quantized = torch.round(matrix / scale[:, None]).clamp_(-_LEVELS, _LEVELS).to(torch.int8)
    # Row-major whatever ``matrix`` was (a Conv1D's weight arrives transposed): the GEMM reads
    # a column-major weight several times slower.
    return quantized.contiguous(), scale.to(torch.float32)


class Int8Linear(nn.Module):
    """``x @ weight.T + bias`` with an int8 weight (one scale per output) and per-row int8 input.

    ``in_features`` and ``out_features`` are ``nn.Linear``'s (code reading the LM head's
    vocabulary reads ``out_features``). Inputs are float32 (the registry refuses other dtypes
    with int8). ``kernel`` picks the GEMM (module docstring); by default fbgemm where it runs.
    ``weight`` is the int8 matrix (out × in) for ``int_mm`` only: fbgemm keeps its own packed
    copy, and a second would cost as many bytes again (124 MB on the 124M model).
    """

    weight: torch.Tensor | None
    scale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, kernel: Kernel | None = None) -> None:
        super().__init__()
        quantized, scale = _quantize_rows(weight.detach().to(torch.float32))
        self.in_features = weight.shape[1]
        self.out_features = weight.shape[0]
        self.kernel: Kernel = kernel or default_kernel()
        self.packed = _pack(quantized, scale) if self.kernel == "fbgemm" else None
        self.register_buffer("weight", None if self.packed is not None else quantized)
        # The input's 1/127 is folded in here, which saves a pass per call.
        self.register_buffer("scale", scale / _LEVELS)
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Each step is one torch op: at one row per call their count, not their work, is the cost.
        rows = x.reshape(-1, self.in_features)
        # abs + amax: several times faster than an inf-norm over many rows.
        peak = rows.abs().amax(dim=1, keepdim=True).clamp_min_(torch.finfo(torch.float32).tiny)
        if self.packed is not None:
            step = peak.mul_(1 / _INPUT_LEVELS)  # each row's quantization step
            out = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
                rows / step, 1.0, _ZERO_POINT, self.packed
            ).mul_(step)
            if self.bias is not None:
                out.add_(self.bias)
            return out.view(*x.shape[:-1], self.out_features)
        quantized = torch.mul(rows, _LEVELS / peak).round_().to(torch.int8)
        # The transposed view, not a contiguous copy: oneDNN reads the weight row by row then.
        out = torch.mul(torch._int_mm(quantized, self.weight.t()), self.scale).mul_(peak)
        if self.bias is not None:
            out.add_(self.bias)
        return out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, kernel={self.kernel}"
        )


def quantize_int8(model: nn.Module) -> int:
    """Replace ``model``'s ``Conv1D`` and ``nn.Linear`` layers by :class:`Int8Linear` in place.

    Embeddings, layer norms and attention stay float32. A head tied to the input embedding gets
    its own int8 copy; the float embedding stays for looking tokens (and token types) up.
    Returns how many layers were replaced.
    """
    from transformers.pytorch_utils import Conv1D

    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv1D):  # weight is in × out
                setattr(module, name, Int8Linear(child.weight.t(), child.bias))
            elif isinstance(child, nn.Linear):
                setattr(module, name, Int8Linear(child.weight, child.bias))
            else:
                continue
            replaced += 1
    return replaced
