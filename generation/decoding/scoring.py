"""How likely a model finds a tweet after a prompt: the evidence behind candidate ranking.

A control-token model is a class-conditional language model, so it can judge its own
candidates the way GeDi uses one as a discriminator: a tweet that really fits "derecha,
negativo" is more likely after that prompt than after the prompts of the other sides or
sentiments. One padded forward pass scores every (prompt, tweet) pair of a request.
The tweet is scored with an EOS after it, so a candidate that stops where no tweet would end
pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from generation.decoding.fastgpt2 import GPT2Stepper, supports
from generation.registry import LoadedModel

#: A tokenized prompt: ids and (controlled models) token types.
Prompt = tuple[list[int], list[int] | None]


@torch.inference_mode()
def continuation_logprobs(
    lm: LoadedModel, pairs: Sequence[tuple[Prompt, list[int]]], batch_size: int = 64
) -> list[float]:
    """Summed log-probability of each continuation's tokens after its prompt."""
    model, device = lm.model, lm.device
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    sums: list[float] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        width = max(len(p[0]) + len(c) for p, c in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        typed = chunk[0][0][1] is not None
        types = torch.zeros((len(chunk), width), dtype=torch.long) if typed else None
        for i, ((prompt_ids, prompt_types), cont) in enumerate(chunk):
            row = prompt_ids + cont
            ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
            if types is not None and prompt_types is not None:
                # New tokens carry the type of the prompt's last token ([TWEET]), as in decoding.
                types[i, :len(row)] = torch.tensor(prompt_types + [prompt_types[-1]] * len(cont))
        hidden = model.base_model(
            input_ids=ids.to(device), attention_mask=mask.to(device),
            token_type_ids=None if types is None else types.to(device),
        ).last_hidden_state
        # The LM head and softmax only where a continuation token is predicted: the prompt and
        # the padding would be most of a (rows × width × vocabulary) tensor, for nothing.
        rows: list[int] = []
        at: list[int] = []
        targets: list[int] = []
        for i, ((prompt_ids, _), cont) in enumerate(chunk):
            rows += [i] * len(cont)
            at += range(len(prompt_ids) - 1, len(prompt_ids) - 1 + len(cont))
            targets += cont
        row_index = torch.tensor(rows, device=device, dtype=torch.long)
        picked = hidden[row_index, torch.tensor(at, device=device, dtype=torch.long)]
        logp = model.get_output_embeddings()(picked).float().log_softmax(-1)
        token_logp = logp.gather(1, torch.tensor(targets, device=device)[:, None]).squeeze(1)
        per_row = torch.zeros(len(chunk), device=device, dtype=torch.float32)
        per_row.index_add_(0, row_index, token_logp)
        sums += per_row.tolist()
    return sums


def score_candidates(
    lm: LoadedModel, prompts: Sequence[Prompt], candidates: Sequence[list[int]]
) -> list[tuple[float, ...]]:
    """Per candidate: its log-probability (tweet + EOS) after each prompt, in prompt order."""
    eos = lm.tokenizer.eos_token_id
    tail = [eos] if eos is not None else []
    continuations = [list(c) + tail for c in candidates]
    if supports(lm.model) and prompts and continuations and all(continuations):
        return _shared_prefix_scores(lm, prompts, continuations)
    pairs = [(prompt, continuation) for continuation in continuations for prompt in prompts]
    flat = continuation_logprobs(lm, pairs)
    k = len(prompts)
    return [tuple(flat[i * k:(i + 1) * k]) for i in range(len(candidates))]


@torch.inference_mode()
def _shared_prefix_scores(
    lm: LoadedModel, prompts: Sequence[Prompt], continuations: list[list[int]]
) -> list[tuple[float, ...]]:
    """``score_candidates`` on the lean GPT-2 forward: each prompt is fed once and its cache
    copied to every candidate, so a request's 8 candidates after 3 contrasts cost 3 prompts and
    24 tweets, not 24 prompts and 24 tweets."""
    stepper = GPT2Stepper(lm.model)
    typed = prompts[0][1] is not None
    first = stepper.join([list(ids) for ids, _ in prompts],
                         [list(t) for _, t in prompts] if typed else None)  # type: ignore[misc]
    k = len(prompts)
    stepper.keep([p for _ in continuations for p in range(k)])  # line c·k + p: candidate c after prompt p
    lines = len(continuations) * k
    width = max(len(c) for c in continuations)
    device = lm.device
    ids = torch.zeros((lines, width), dtype=torch.long)
    counts: list[int] = []
    for c, tokens in enumerate(continuations):
        ids[c * k:(c + 1) * k, : len(tokens)] = torch.tensor(tokens)
        counts += [len(tokens)] * k
    types = None
    if typed:
        last = torch.tensor([prompts[p][1][-1] for _ in continuations for p in range(k)])  # type: ignore[index]
        types = last[:, None].expand(lines, width).to(device)
    # Token 0 is predicted by the prompt's last position, token i by the tweet's position i-1.
    ids = ids.to(device)
    hidden = stepper.extend(ids, types, counts)
    # (Long, explicitly: candidates that are only their EOS leave these lists empty.)
    line_index = torch.tensor([line for line, n in enumerate(counts) for _ in range(n - 1)], device=device,
                              dtype=torch.long)
    at = torch.tensor([i for n in counts for i in range(n - 1)], device=device, dtype=torch.long)
    targets = ids[line_index, at + 1]
    logp = stepper.logits(hidden[line_index, at]).float().log_softmax(-1)
    sums = torch.zeros(lines, device=device).index_add_(0, line_index, logp.gather(1, targets[:, None]).squeeze(1))
    opening = first.float().log_softmax(-1)  # prompt p's next-token log-probabilities
    heads = torch.tensor([tokens[0] for tokens in continuations for _ in range(k)], device=device)
    sums += opening[torch.arange(lines, device=device) % k, heads]
    flat = sums.tolist()
    return [tuple(flat[c * k:(c + 1) * k]) for c in range(len(continuations))]
