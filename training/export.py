"""``export``: a trained model as a self-contained Hugging Face folder the bot can point at.

The folder holds safetensors weights, the tokenizer, a generation config with the decoding the
model was evaluated with, and a model card (README.md) that says what data and commands made it
and what it measured, so a copy of the folder answers "where does this come from" on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from generation.prompts import ControlFields, prompt_text
from generation.settings import Decoding
from training.errors import InputError
from training.evaluate import TARGETS
from training.lm import load_model, load_tokenizer
from training.tables import read_jsonl

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _read_json(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from exc


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    rows = ["| metric | value | target |", "| --- | --- | --- |"]
    for name in ("open_share", "realism_accuracy", "side_adherence", "sentiment_adherence",
                 "topic_inclusion", "memorization", "distinct_2", "perplexity", "classifier_accuracy",
                 "latency_ms_median"):
        if isinstance(metrics.get(name), int | float):
            target = TARGETS.get(name)
            rows.append(f"| {name} | {metrics[name]:.3f} | {f'{target[0]} {target[1]}' if target else ''} |")
    return rows


def model_card(
    name: str, kind: str, model, tokenizer, run: dict[str, Any], data: dict[str, Any],
    metrics: dict[str, Any], commands: str, size_bytes: int,
) -> str:
    """The README.md of an exported folder (Hugging Face model-card layout)."""
    config = model.config
    params = sum(p.numel() for p in model.parameters())
    example = prompt_text(ControlFields("Chile Vamos", "IND-RN", "POSITIVE", ("Valparaíso",)))
    lines = [
        "---", "language: es", "license: mit", "library_name: transformers",
        "tags: [gpt2, text-generation, spanish, politics, fiction]", "---", "",
        f"# {name}", "",
        "GPT-2 that writes **fictional** tweets in the style of Chilean politicians "
        "(\"Este político no existe\"). Every text it produces is invented and must be shown as "
        "such: it is not a statement of any real person.", "",
        "## Model", "",
        f"- kind: {kind}; GPT-2, {config.n_layer} layers, {config.n_embd} wide, {config.n_head} heads, "
        f"{config.n_positions} positions, vocabulary {len(tokenizer)}; {params / 1e6:.2f} M parameters, "
        f"{size_bytes / 1e6:.1f} MB on disk",
        "- tokenizer: byte-level BPE; `[TWEET]` is BOS, `<|endoftext|>` EOS and pad; "
        "`[COALICION] [PARTIDO] [SENTIMIENTO] [ENTIDADES] [HASHTAGS] [FRASES]` are special tokens",
    ]
    if kind == "controlled":
        lines += [
            "", "## Prompt format", "",
            "Segments ` [NAME] value` (each tokenized on its own, token type = the marker's id), "
            "then ` [TWEET] `; build them with `generation.prompts.encode_prompt`. Example:", "",
            f"```\n{example}\n```",
        ]
    if data:
        rows = data.get("rows", {})
        labels = data.get("labels", {})
        lines += ["", "## Data", ""]
        if rows:
            held_out = f"{rows.get('validation', '?')} validation"
            if "test" in rows:
                held_out += f" and {rows['test']} test"
            lines.append(f"- {rows.get('train', '?')} training, {held_out} tweets after cleaning "
                         f"({json.dumps(data.get('cleaning', {}))})")
        for field in ("partido", "lado", "sentimiento"):
            if field in labels:
                lines.append(f"- {field}: " + ", ".join(f"{k} {v}" for k, v in labels[field].items()))
        if "annotators" in data:
            lines.append(f"- annotators: {json.dumps(data['annotators'])}")
    if run:
        lines += ["", "## Training run", "", f"- steps: {run.get('max_steps')}; options: "
                  + ", ".join(f"{k}={v}" for k, v in run.get("options", {}).items()
                              if k in ("epochs", "max_steps", "batch_size", "lr", "seed", "precision"))]
        train_metrics = run.get("metrics", {})
        for key in ("train_runtime", "train_loss", "eval_loss", "eval_perplexity"):
            if key in train_metrics:
                lines.append(f"- {key}: {train_metrics[key]:.3f}")
    if commands:
        lines += ["", "## How it was made", "", "```bash", commands.strip(), "```"]
    if metrics:
        split = metrics.get("split", "held-out")
        lines += ["", f"## Evaluation ({split} split: held-out prompts and their real tweets)", "",
                  *_metrics_table(metrics)]
        if metrics.get("decoding"):
            lines += ["", f"Decoded with {metrics.get('candidates', 1)} candidate(s) per prompt and "
                      + ", ".join(f"{k} {v}" for k, v in metrics["decoding"].items())
                      + " (guide_*: topic guidance, `generation/decoding/guidance.py`; contrast_guidance: leaning"
                      " away from the other sides' prompts, `generation/decoding/contrast.py`; as the bot decodes)."]
    lines += [
        "", "## Limitations", "",
        "Small and trained on little data: it imitates surface style, mixes facts, and may "
        "produce offensive or false statements. Use it only for clearly labelled fiction.",
    ]
    return "\n".join(lines) + "\n"


#: Real tweets shipped beside a model (the ¿Real o ficticio? game's real half) at the most.
MAX_REAL_TWEETS = 1000


def ship_real_tweets(source: Path, out: Path) -> int:
    """Copy up to ``MAX_REAL_TWEETS`` complete rows of a held-out split to ``test_tweets.jsonl``.

    The bot's guessing game needs real tweets the model never trained on; only the test split
    qualifies, and only its complete tweets (a cut one would give the real tweet away).
    """
    rows = [r for r in read_jsonl(source) if r.get("completo", True)][:MAX_REAL_TWEETS]
    with (out / "test_tweets.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def export(
    model_path: str, out: Path, *, kind: str = "controlled", name: str = "", dtype: str = "float32",
    data_stats: Path | None = None, evaluation: Path | None = None, commands: Path | None = None,
    sources: Path | None = None, real_tweets: Path | None = None,
) -> dict[str, Any]:
    """Write the folder; returns its files and size.

    ``sources``: Markdown naming where the training text came from and its licences, added to
    the card; ``real_tweets``: the test split, shipped beside the model for the guessing game.
    """
    if kind not in ("controlled", "casual"):
        raise InputError(f"unknown model kind {kind!r} (controlled, casual)")
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r} (use {', '.join(DTYPES)})")
    tokenizer = load_tokenizer(model_path)
    model = load_model(model_path, tokenizer).to(DTYPES[dtype])
    evaluated = _read_json(evaluation)
    # The decoding the model was evaluated with (the bot's), else the defaults.
    decoding = Decoding.model_validate(evaluated.get("decoding") or {})
    # No repetition settings here: plain ``generate`` would count the control prompt too and so
    # refuse to write the requested topic (see generation/decoding/penalties.py).
    model.generation_config.update(
        do_sample=True, max_new_tokens=decoding.max_new_tokens, temperature=decoding.temperature,
        top_p=decoding.top_p, min_p=decoding.min_p or None, typical_p=decoding.typical_p,
        no_repeat_ngram_size=0, repetition_penalty=1.0,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    run = _read_json(Path(model_path) / "run.json") if (Path(model_path) / "run.json").is_file() else {}
    command_text = Path(commands).read_text(encoding="utf-8") if commands else ""
    weights = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    card = model_card(name or out.name, kind, model, tokenizer, run, _read_json(data_stats),
                      evaluated, command_text, weights)
    if sources:
        card += "\n" + Path(sources).read_text(encoding="utf-8").strip() + "\n"
    if real_tweets:
        shipped = ship_real_tweets(Path(real_tweets), out)
        card += (f"\n## Real tweets shipped beside it\n\n`test_tweets.jsonl`: {shipped} complete tweets of "
                 "the test split (public tweets of the 2017 presidential candidates, collected through "
                 "the Twitter API in November 2017; cleaned and labelled by `politico-train prepare`). "
                 "No training step saw them; the bot's ¿Real o ficticio? game shows them beside "
                 "generated ones.\n")
    (out / "README.md").write_text(card, encoding="utf-8")
    files = sorted(f.name for f in out.iterdir() if f.is_file())
    return {"out": str(out), "files": files, "bytes": sum((out / f).stat().st_size for f in files)}
