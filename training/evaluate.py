"""``evaluate``: held-out perplexity and control adherence, written up as Markdown with plots.

Prompts come from the validation split, which no training step saw. For a controlled model
each prompt is what a user of the bot gives (``--prompt user``: coalition, party, sentiment and
one topic word, the held-out tweet's first entity) or the held-out tweet's whole annotated
context (``--prompt full``). A casual model is prompted with BOS alone and checked against
``--side``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from generation.prompts import ControlFields
from training.contextual import ContextualDataset, Example, fields_of
from training.corpus import PackedCorpus
from training.errors import InputError
from training.generate import Decoding, sample
from training.lm import PadCollator, load_model, load_tokenizer, set_threads
from training.metrics import CopyDetector, SideClassifier, agreement, contains_topic, distinct_n
from training.sentiment import make_sentiment
from training.tables import read_jsonl

#: The demo model's targets (issue 3): metric → (comparison, value).
TARGETS: dict[str, tuple[str, float]] = {
    "side_adherence": (">=", 0.75),
    "topic_inclusion": (">=", 0.85),
    "memorization": ("<=", 0.05),
    "distinct_2": (">=", 0.5),
}


@dataclass
class EvaluateOptions:
    model: str
    train: Path
    validation: Path
    out: Path
    kind: str = "controlled"
    prompt: str = "user"
    side: str = ""
    samples: int = 300
    #: Tweets sampled per prompt; the first that names the prompt's topic is kept, as the bot
    #: does with ``bot.candidates`` (1 = plain sampling).
    candidates: int = 1
    #: Decode with topic guidance, as the bot does for the demo model (False: the model alone).
    guide: bool = True
    sentiment: str = "auto"
    copy_words: int = 8
    max_new_tokens: int = 60
    threads: int = 0
    seed: int = 42
    progress: bool = True
    #: The bot's database URL: adds how its players judged this model (``training/human.py``).
    human_db: str = ""


@torch.no_grad()
def perplexity(model, tokenizer, dataset, batch_size: int = 32) -> float:
    """exp of the mean loss per predicted token (only tweet tokens for a controlled model)."""
    collate = PadCollator(tokenizer.pad_token_id)
    model.eval()
    total, count = 0.0, 0
    items = list(dataset)
    for start in range(0, len(items), batch_size):
        batch = collate(items[start:start + batch_size])
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels.reshape(-1), reduction="sum", ignore_index=-100
        )
        total += float(loss)
        count += int((labels != -100).sum())
    if not count:
        raise InputError("no held-out tokens to measure perplexity on")
    return math.exp(total / count)


def user_prompt(fields: ControlFields) -> ControlFields:
    """What a bot user gives: the labels, the sentiment and at most one topic word."""
    return ControlFields(fields.coalicion, fields.partido, fields.sentimiento, fields.entidades[:1])


def _plots(out: Path, metrics: dict[str, Any], confusion: dict[str, dict[str, int]] | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in TARGETS if isinstance(metrics.get(m), float) and not math.isnan(metrics[m])]
    written = []
    fig, ax = plt.subplots(figsize=(5, 3), dpi=90)
    ax.bar(names, [metrics[m] for m in names], color="#4a7ab5")
    for i, name in enumerate(names):
        ax.hlines(TARGETS[name][1], i - 0.4, i + 0.4, colors="#c0392b", linestyles="--")
        ax.text(i, metrics[name] + 0.02, f"{metrics[name]:.2f}", ha="center", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_title("Control adherence (dashed: target)", fontsize=9)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "metrics.png")
    plt.close(fig)
    written.append("metrics.png")
    if confusion:
        sides = sorted(confusion)
        predicted = sorted({p for row in confusion.values() for p in row} | set(sides))
        grid = [[confusion[s].get(p, 0) for p in predicted] for s in sides]
        fig, ax = plt.subplots(figsize=(4, 3), dpi=90)
        ax.imshow(grid, cmap="Blues")
        ax.set_xticks(range(len(predicted)), predicted, fontsize=7)
        ax.set_yticks(range(len(sides)), sides, fontsize=7)
        ax.set_xlabel("classifier says", fontsize=8)
        ax.set_ylabel("prompt asked for", fontsize=8)
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "sides.png")
        plt.close(fig)
        written.append("sides.png")
    return written


def _report(options: EvaluateOptions, metrics: dict[str, Any], rows: list[dict[str, Any]],
            plots: list[str]) -> str:
    lines = [
        f"# Evaluation of `{options.model}`", "",
        f"- kind: {options.kind}; prompts: {options.prompt}; {metrics['prompts']} prompts from "
        f"`{options.validation.name}` (held out); seed {options.seed}",
        f"- side classifier: TF-IDF + logistic regression on `{options.train.name}`, accuracy on the "
        f"held-out real tweets {metrics['classifier_accuracy']:.3f} (the ceiling for side adherence)",
        f"- sentiment annotator: {metrics['sentiment_annotator']}; memorization: a generated tweet "
        f"repeating {options.copy_words}+ consecutive words of a training tweet",
        "- decoding: " + ", ".join(f"{k} {v}" for k, v in metrics["decoding"].items()), "",
        "| metric | value | target |", "| --- | --- | --- |",
    ]
    shown = ["perplexity", "side_adherence", "sentiment_adherence", "topic_inclusion",
             "topic_inclusion_first_candidate", "memorization", "distinct_2", "empty"]
    for name in shown:
        value = metrics.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        target = TARGETS.get(name)
        verdict = ""
        if target:
            ok = value >= target[1] if target[0] == ">=" else value <= target[1]
            verdict = f"{target[0]} {target[1]} {'✅' if ok else '❌'}"
        lines.append(f"| {name} | {value:.3f} | {verdict} |")
    if metrics.get("topic_prompts") is not None:
        lines += ["", f"Topic inclusion is over the {metrics['topic_prompts']} prompts that carried a topic; "
                  f"{metrics['candidates']} tweet(s) sampled per prompt, the first naming the topic kept "
                  "(as the bot does with `bot.candidates`); `topic_inclusion_first_candidate` is plain "
                  "sampling, one tweet per prompt."]
    lines += ["", *[f"![{p}]({p})" for p in plots], "", "## Samples", "",
              "| prompt | generated |", "| --- | --- |"]
    for row in rows[:12]:
        prompt = " ".join(f"{k}={v}" for k, v in row["prompt"].items() if v)
        text = row["generated"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {prompt} | {text} |")
    return "\n".join(lines) + "\n"


def _on_topic(group: list[str], prompt: ControlFields | None) -> str:
    """The first candidate that names the prompt's topic, else the first one."""
    if prompt is not None and prompt.entidades:
        return next((t for t in group if contains_topic(t, prompt.entidades[0])), group[0])
    return group[0]


def evaluate(options: EvaluateOptions) -> dict[str, Any]:
    """Measure, write ``report.md``, ``metrics.json``, ``samples.jsonl`` and plots to ``options.out``."""
    if options.kind not in ("controlled", "casual"):
        raise InputError(f"unknown model kind {options.kind!r} (controlled, casual)")
    if options.prompt not in ("user", "full"):
        raise InputError(f"unknown prompt mode {options.prompt!r} (user, full)")
    set_threads(options.threads)
    tokenizer = load_tokenizer(options.model)
    model = load_model(options.model, tokenizer)
    train_rows, held_out = read_jsonl(options.train), read_jsonl(options.validation)
    for row in train_rows + held_out:
        if not row.get("lado"):
            raise InputError("rows need a 'lado' (side) label: use prepare's JSONL with an authors table")
    rng = random.Random(options.seed)
    chosen = rng.sample(held_out, min(options.samples, len(held_out)))
    block = model.config.n_positions
    if options.kind == "controlled":
        examples = [Example(fields_of(r), r["tweet"], r.get("completo", True)) for r in held_out]
        ppl = perplexity(model, tokenizer, ContextualDataset(examples, tokenizer, block))
        fields = [fields_of(r) for r in chosen]
        prompts: list[ControlFields | None] = [user_prompt(f) if options.prompt == "user" else f for f in fields]
        wanted_sides = [r["lado"] for r in chosen]
    else:
        if not options.side:
            raise InputError("a casual model needs --side (the side it was fine-tuned on)")
        ppl = perplexity(model, tokenizer, PackedCorpus([options.validation], tokenizer, block, wrap=True,
                                                        shuffle_buffer=1))
        prompts = [None] * len(chosen)
        wanted_sides = [options.side] * len(chosen)
    n = max(1, options.candidates)
    decoding = Decoding(max_new_tokens=options.max_new_tokens)
    if not options.guide:
        decoding = replace(decoding, guide_start_bias=0.0, guide_bias=0.0)
    drawn = sample(model, tokenizer, [p for p in prompts for _ in range(n)], decoding, options.seed,
                   options.progress)
    groups = [drawn[i * n:(i + 1) * n] for i in range(len(prompts))]
    texts = [_on_topic(group, prompt) for group, prompt in zip(groups, prompts, strict=True)]

    classifier = SideClassifier(options.seed).fit([r["tweet"] for r in train_rows], [r["lado"] for r in train_rows])
    sides = classifier.predict(texts)
    annotator = make_sentiment(options.sentiment)
    sentiments = annotator(texts)
    metrics: dict[str, Any] = {
        "prompts": len(texts),
        "perplexity": ppl,
        "classifier_accuracy": agreement(classifier.predict([r["tweet"] for r in held_out]),
                                         [r["lado"] for r in held_out]),
        "side_adherence": agreement(sides, wanted_sides),
        "memorization": CopyDetector((r["tweet"] for r in train_rows), options.copy_words).share(texts),
        "distinct_2": distinct_n(texts, 2),
        "empty": sum(not t for t in texts) / len(texts),
        "sentiment_annotator": annotator.name,
        "decoding": {k: v for k, v in asdict(decoding).items() if k != "batch_size"},
    }
    rows = []
    topic_hits = []
    for prompt, text, side, sentiment, wanted in zip(prompts, texts, sides, sentiments, wanted_sides, strict=True):
        row: dict[str, Any] = {"prompt": {"lado": wanted}, "generated": text, "side": side, "sentimiento": sentiment}
        if prompt is not None:
            row["prompt"].update({k: v for k, v in asdict(prompt).items() if v})
            if prompt.entidades:
                topic_hits.append(contains_topic(text, prompt.entidades[0]))
        rows.append(row)
    if options.kind == "controlled":
        metrics["sentiment_adherence"] = agreement(sentiments, [p.sentimiento for p in prompts if p])
        metrics["topic_prompts"] = len(topic_hits)
        metrics["topic_inclusion"] = sum(topic_hits) / len(topic_hits) if topic_hits else float("nan")
        metrics["candidates"] = n
        single = [contains_topic(g[0], p.entidades[0]) for g, p in zip(groups, prompts, strict=True)
                  if p is not None and p.entidades]
        metrics["topic_inclusion_first_candidate"] = sum(single) / len(single) if single else float("nan")
    confusion: dict[str, dict[str, int]] = {}
    for wanted, got in zip(wanted_sides, sides, strict=True):
        confusion.setdefault(wanted, {}).setdefault(got, 0)
        confusion[wanted][got] += 1
    metrics["side_confusion"] = confusion
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(out, metrics, confusion)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    with (out / "samples.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(_report(options, metrics, rows, plots), encoding="utf-8")
    if options.human_db:  # people's verdict, from the bot's ¿Real o ficticio? game
        from training.human import add_human_figures
        add_human_figures(options.human_db, options.model, out, metrics)
    return metrics
