"""Does ``quantize = "int8"`` keep a model's quality? Held-out perplexity and same-seed tweets.

Loads one model folder twice, float32 and int8, and measures on held-out tweets (``prepare``'s
JSONL rows: the control fields and ``tweet``):

- the perplexity of each on the tweets, given their controls (the training objective; for a
  casual model, given BOS), and their ratio: issue 14 asks for int8 within 2% of float32;
- tweets sampled from the same prompts and seeds by both, and the float32 model's perplexity of
  each set, so "still fluent" is a number as well as text to read.

Run ``python -m generation.measuring.quantcheck --model models/demo --data runs/demo3/data/test.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.decoding.sampling import Row, TokenTable, decode_batch
from generation.prompts import IGNORE_INDEX, ControlFields, Encoded, encode_example, encode_prompt
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.backends.local import encode_casual
from generation.settings import ModelSpec
from generation.types import SamplingParams


@dataclass(frozen=True)
class HeldOut:
    """One held-out tweet and the controls it was written under."""

    fields: ControlFields
    tweet: str
    complete: bool


def read_held_out(path: Path) -> list[HeldOut]:
    """The rows of a JSONL file of prepared tweets (rows without a tweet are skipped)."""

    def listed(value: Any) -> tuple[str, ...]:
        return tuple(value.split()) if isinstance(value, str) else tuple(str(v) for v in value or ())

    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if not str(row.get("tweet") or "").strip():
            continue
        fields = ControlFields(
            coalicion=str(row.get("coalicion") or ""), partido=str(row.get("partido") or ""),
            sentimiento=str(row.get("sentimiento") or ""), entidades=listed(row.get("entidades")),
            hashtags=listed(row.get("hashtags")), frases=listed(row.get("frases")),
        )
        rows.append(HeldOut(fields, row["tweet"], bool(row.get("completo", True))))
    return rows


def _sequence(lm: LoadedModel, item: HeldOut) -> Encoded:
    """What the model is scored on: controls (or BOS) then the tweet, loss on the tweet only."""
    block = lm.max_positions or 1024
    if lm.spec.kind == "controlled":
        return encode_example(lm.tokenizer, item.fields, item.tweet, block, item.complete)
    bos = encode_casual(lm.tokenizer)
    body = lm.tokenizer.encode(item.tweet.strip(), add_special_tokens=False)
    if item.complete:
        body.append(lm.tokenizer.eos_token_id)
    body = body[:block - len(bos)]
    return Encoded(bos + body, [0] * (len(bos) + len(body)), [IGNORE_INDEX] * len(bos) + body)


@torch.inference_mode()
def perplexity(lm: LoadedModel, items: list[HeldOut], batch_size: int = 16) -> float:
    """exp of the mean loss per tweet token (and EOS) of ``items`` under ``lm``."""
    total, count = 0.0, 0
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    controlled = lm.spec.kind == "controlled"
    for start in range(0, len(items), batch_size):
        seqs = [_sequence(lm, item) for item in items[start:start + batch_size]]
        width = max(len(s.input_ids) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        types = torch.zeros_like(ids)
        labels = torch.full_like(ids, IGNORE_INDEX)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            n = len(s.input_ids)
            ids[i, :n], types[i, :n] = torch.tensor(s.input_ids), torch.tensor(s.token_type_ids)
            labels[i, :n], mask[i, :n] = torch.tensor(s.labels), 1
        logits = lm.model(
            input_ids=ids, attention_mask=mask, token_type_ids=types if controlled else None
        ).logits[:, :-1].float()
        target = labels[:, 1:]
        total += float(torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum",
            ignore_index=IGNORE_INDEX,
        ))
        count += int((target != IGNORE_INDEX).sum())
    if not count:
        raise ValueError("no held-out tweet tokens to measure perplexity on")
    return math.exp(total / count)


def sample(lm: LoadedModel, items: list[HeldOut], seed: int, max_new_tokens: int) -> list[str]:
    """One tweet per item, from its controls (casual: from BOS), seeded ``seed + i``."""
    table = TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.8, top_p=0.9,
                            no_repeat_ngram_size=3, repetition_penalty=1.1)
    rows = []
    for i, item in enumerate(items):
        if lm.spec.kind == "controlled":
            prompt = encode_prompt(lm.tokenizer, item.fields)
            rows.append(Row(prompt.input_ids, prompt.token_type_ids, params, seed + i))
        else:
            rows.append(Row(encode_casual(lm.tokenizer), None, params, seed + i))
    return [r.text for r in decode_batch(lm, table, rows)]


def check(
    folder: Path, data: Path, kind: str = "controlled", samples: int = 8, seed: int = 7,
    max_new_tokens: int = 60, threads: int = 0,
) -> dict[str, Any]:
    """Perplexity of float32 and int8 on ``data``, and same-seed tweets from both (see module)."""
    specs = {
        precision: ModelSpec(path=str(folder), kind=kind, device="cpu", quantize=quantize)
        for precision, quantize in (("float32", "none"), ("int8", "int8"))
    }
    registry = ModelRegistry(specs, threads=threads, warmup=False)
    items = read_held_out(data)
    if not items:
        raise ValueError(f"{data}: no rows with a tweet")
    fp32, int8 = registry.get("float32"), registry.get("int8")
    ppl = {"float32": perplexity(fp32, items), "int8": perplexity(int8, items)}
    prompts = items[:samples]
    tweets = {"float32": sample(fp32, prompts, seed, max_new_tokens),
              "int8": sample(int8, prompts, seed, max_new_tokens)}
    # How natural each set reads to the float32 model: the same measure as above, on its tweets.
    fluency = {
        precision: perplexity(fp32, [HeldOut(p.fields, t, False) for p, t in zip(prompts, texts, strict=True) if t.strip()])
        for precision, texts in tweets.items()
    }
    ratio = ppl["int8"] / ppl["float32"]
    return {
        "model": str(folder),
        "data": str(data),
        "held_out_tweets": len(items),
        "perplexity": {k: round(v, 3) for k, v in ppl.items()},
        "int8_vs_float32": round(ratio, 4),
        "within_2pct": ratio <= 1.02,
        "samples": [
            {"controls": p.fields.values() if kind == "controlled" else {}, "seed": seed + i,
             "float32": tweets["float32"][i], "int8": tweets["int8"][i]}
            for i, p in enumerate(prompts)
        ],
        "samples_perplexity_under_float32": {k: round(v, 3) for k, v in fluency.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generation.measuring.quantcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model folder")
    parser.add_argument("--data", type=Path, required=True, help="held-out JSONL (prepare's test split)")
    parser.add_argument("--kind", choices=("controlled", "casual"), default="controlled")
    parser.add_argument("--samples", type=int, default=8, help="same-seed tweets to compare")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    report = check(args.model, args.data, args.kind, args.samples, threads=args.threads)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if report["within_2pct"] else 1


if __name__ == "__main__":
    sys.exit(main())
