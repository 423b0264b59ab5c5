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
    pairs = [(prompt, list(tokens) + tail) for tokens in candidates for prompt in prompts]
    flat = continuation_logprobs(lm, pairs)
    k = len(prompts)
    return [tuple(flat[i * k:(i + 1) * k]) for i in range(len(candidates))]
