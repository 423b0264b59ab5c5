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
given the row's tokens, never samples its own). Only tokens the requested controls find
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


class NegativeLines:
    """The batch's negative-prompt lines: which main line each belongs to, and the weights.

    The batch holds the main lines first and the negative lines after them; ``owners[j]`` is the
    main line of negative line ``j``. Rows without negatives (or with weight 0) are left as is.
    """

    def __init__(self, owners: list[int], weights: list[float]) -> None:
        self.owners = owners
        self.weights = torch.tensor(weights, dtype=torch.float32)

    def spread(self, per_row: torch.Tensor) -> torch.Tensor:
        """A per-main-line tensor extended to every line of the batch (negatives copy their row)."""
        if not self.owners:
            return per_row
        return torch.cat([per_row, per_row[torch.tensor(self.owners, device=per_row.device)]])

    def lines_of(self, line: int) -> list[int]:
        """Main line ``line`` and its negative lines, as batch lines."""
        base = len(self.weights)
        return [line, *(base + j for j, owner in enumerate(self.owners) if owner == line)]

    def combine(self, main: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """Guided next-token logits of the main lines (``main``: lines × vocabulary).

        A guided row's logits become log-probabilities (the same distribution, so temperature,
        top-p and the rest apply as before), shifted by ``w · (log p(x|c) − log p(x|c̄))``.
        """
        if not self.owners:
            return main
        lines = main.shape[0]
        owners = torch.tensor(self.owners, device=main.device)
        counts = torch.bincount(owners, minlength=lines)
        guided = (counts > 0) & (self.weights.to(main.device) > 0)
        if not bool(guided.any()):
            return main
        logp = main.log_softmax(-1)
        # log of the mean of the negative prompts' probabilities, per main line
        mixture = torch.zeros_like(main).index_add_(0, owners, negative.softmax(-1))
        log_negative = (mixture / counts.clamp_min(1)[:, None]).clamp_min_(1e-30).log_()
        shifted = logp + self.weights.to(main.device)[:, None] * (logp - log_negative)
        implausible = logp < logp.max(-1, keepdim=True).values + math.log(PLAUSIBLE)
        shifted = torch.where(implausible, logp - _OUT, shifted)
        return torch.where(guided[:, None], shifted, main)

    def keep(self, kept: list[int]) -> list[int]:
        """Follow the main lines that stay (``kept``, old positions in order): the negative
        lines that stay (old positions within the negative block), owners renumbered."""
        position = {old: new for new, old in enumerate(kept)}
        stay = [j for j, owner in enumerate(self.owners) if owner in position]
        self.owners = [position[self.owners[j]] for j in stay]
        self.weights = self.weights[torch.tensor(kept, dtype=torch.long)]
        return stay
