"""Contrast guidance: each decoding step leans toward the requested side, away from the others.

The controlled model is a class-conditional language model: the same tweet prefix continued
under the requested controls and under another side's controls gives two next-token
distributions, and where they differ is what makes a tweet sound like one side rather than
the other. Classifier-free guidance (Sanchez et al., 2023, "Stay on topic with classifier-free
guidance") samples from ``log p(x|c) + w · (log p(x|c) − log p(x|c̄))``; here ``c̄`` is the
mixture of the other sides' prompts (the "negative prompts"), so the step favours tokens the
requested side explains better than any other, which is what GeDi's contrast does when ranking
finished candidates (``generation/decoding/ranking.py``) but applied while writing.

Each negative prompt is one more line in the batch, decoded in lockstep with its row (it is
given the row's tokens, never samples its own; ``generation/decoding/batch.py``). Only tokens the requested controls find
plausible on their own stay in play (the plausibility cut of contrastive decoding, Li et al.,
2023), so guidance re-weights what the model would write anyway instead of surfacing rare
tokens the other sides happen to find even rarer. The cut pushes the others far down rather
than out, in their unguided order: if bans later remove every plausible token, the row goes on
as it would have without guidance instead of ending.
"""

from __future__ import annotations

import math

import torch

#: A token must be at least this likely relative to the row's most likely token, under the
#: requested controls alone, to be written when guidance is on.
PLAUSIBLE = 0.01
#: How far below the plausible tokens the others go (far enough that no bias lifts them back).
_OUT = 1e4


def guide(main: torch.Tensor, lines: torch.Tensor, negatives: torch.Tensor, present: torch.Tensor | None,
          weights: torch.Tensor) -> torch.Tensor:
    """Guided next-token logits of the rows (``main``: rows × vocabulary).

    ``lines`` holds every line's logits, ``negatives`` (rows × k) the lines of each row's
    negative prompts and ``present`` (rows × k) which of those entries are real (None: all of
    them); ``weights`` is each row's guidance weight. A guided row's logits become
    log-probabilities (the same distribution, so temperature, top-p and the rest apply as
    before), shifted by ``w · (log p(x|c) − log p(x|c̄))``; rows without negatives or with weight
    0 are left as they are. A fixed set of operations, whatever the number of rows, nothing read
    back, and the same sums in the same order every time: the negatives' mixture is a sum over
    each row's own k entries, not a scatter-add, whose float atomics on a GPU add in whatever
    order the threads arrive.
    """
    rows, k = negatives.shape
    probs = lines[negatives.reshape(-1)].view(rows, k, -1).softmax(-1)
    if present is None:
        mixture = probs.sum(1)
        counts = torch.full((rows,), float(k), dtype=main.dtype, device=main.device)
    else:
        mixture = (probs * present[:, :, None]).sum(1)
        counts = present.sum(1).to(main.dtype)
    guided = (counts > 0) & (weights > 0)
    logp = main.log_softmax(-1)
    # log of the mean of the negative prompts' probabilities, per row
    log_negative = (mixture / counts.clamp_min(1)[:, None]).clamp_min_(1e-30).log_()
    shifted = logp + weights[:, None] * (logp - log_negative)
    implausible = logp < logp.max(-1, keepdim=True).values + math.log(PLAUSIBLE)
    shifted = torch.where(implausible, logp - _OUT, shifted)
    return torch.where(guided[:, None], shifted, main)
