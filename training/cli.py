"""``politico-train``: the training package's command line.

Every option can be given as a flag or in a TOML file (``--config run.toml``) under a table
named after the command, with the flag's name as key (``vocab-size`` or ``vocab_size``); flags
win over the file. Bad input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.errors import InputError

Handler = Callable[[argparse.Namespace], Any]


def _training_flags(parser: argparse.ArgumentParser, lr: float, epochs: float) -> None:
    group = parser.add_argument_group("training loop")
    group.add_argument("--out", type=Path, required=True, help="output folder (model, checkpoints)")
    group.add_argument("--epochs", type=float, default=epochs)
    group.add_argument("--max-steps", type=int, default=-1, help="overrides --epochs when > 0")
    group.add_argument("--batch-size", type=int, default=16, help="per device")
    group.add_argument("--grad-accum", type=int, default=1)
    group.add_argument("--lr", type=float, default=lr)
    group.add_argument("--warmup-steps", type=int, default=0)
    group.add_argument("--weight-decay", type=float, default=0.01)
    group.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                       help="auto: bf16/fp16 on CUDA, fp32 on CPU")
    group.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps")
    group.add_argument("--save-total-limit", type=int, default=2)
    group.add_argument("--logging-steps", type=int, default=50)
    group.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    group.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all)")


def _shape_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model shape")
    group.add_argument("--n-layer", type=int, default=4)
    group.add_argument("--n-embd", type=int, default=256)
    group.add_argument("--n-head", type=int, default=4)
    group.add_argument("--n-positions", type=int, default=128, help="also the block size")
    group.add_argument("--dropout", type=float, default=0.1)


def _train_options(args: argparse.Namespace):
    from training.lm import TrainOptions

    return TrainOptions(
        out=args.out, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
        grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay, seed=args.seed, precision=args.precision,
        save_steps=args.save_steps, save_total_limit=args.save_total_limit,
        logging_steps=args.logging_steps, resume=args.resume, threads=args.threads,
        progress=not args.quiet,
    )


def run_prepare(args: argparse.Namespace) -> dict:
    from training.prepare import PrepareOptions, prepare

    summary = prepare(PrepareOptions(
        tweets=args.tweets, out=args.out, authors=args.authors, text_column=args.text_column,
        author_column=args.author_column, validation=args.validation, test=args.test,
        retweets=args.retweets, exclude=args.exclude, exclude_authors=args.exclude_authors,
        exclude_words=args.exclude_words, min_words=args.min_words,
        sentiment=args.sentiment, entities=args.entities, max_entities=args.max_entities,
        max_phrases=args.max_phrases, skip_unknown_authors=args.skip_unknown_authors,
        progress=not args.quiet,
    ))
    return summary


def run_prose(args: argparse.Namespace) -> dict:
    from training.prose import write_prose

    return write_prose(args.unpacked, args.out, args.min_words)


def run_tokenizer(args: argparse.Namespace) -> dict:
    from training.bpe import train_tokenizer

    tokenizer = train_tokenizer(args.corpus, args.out, args.vocab_size, args.min_frequency,
                                args.text_field, progress=not args.quiet)
    return {"vocab_size": len(tokenizer), "out": str(args.out)}


def run_pretrain(args: argparse.Namespace) -> dict:
    from training.causal import pretrain
    from training.lm import ModelShape

    shape = ModelShape(args.n_layer, args.n_embd, args.n_head, args.n_positions, args.dropout)
    return pretrain(args.tokenizer, args.corpus, _train_options(args), shape, args.validation, args.text_field)


def run_finetune(args: argparse.Namespace) -> dict:
    from training.causal import finetune

    return finetune(args.base, args.tweets, _train_options(args), args.block_size, args.validation,
                    args.text_field)


def run_contextual(args: argparse.Namespace) -> dict:
    from training.contextual import contextual

    return contextual(args.base, args.train, _train_options(args), args.block_size, args.validation,
                      args.field_dropout)


def run_evaluate(args: argparse.Namespace) -> dict:
    from training.decode import parse_overrides
    from training.evaluate import EvaluateOptions, evaluate

    return evaluate(EvaluateOptions(
        model=args.model, train=args.train, held_out=args.held_out, out=args.out, kind=args.kind,
        prompt=args.prompt, side=args.side, samples=args.samples, candidates=args.candidates,
        bot_config=args.bot_config, bot_model=args.bot_model, decoding=parse_overrides(args.set or []),
        ranking=parse_overrides(args.rank or []), sentiment=args.sentiment, copy_words=args.copy_words,
        latency_requests=args.latency_requests, threads=args.threads, seed=args.seed,
        progress=not args.quiet, human_db=args.human_db, prompt_sets=args.prompt_sets,
        dictionary=args.dictionary,
    ))


def run_rerank(args: argparse.Namespace) -> dict:
    from training.rerank import rerank

    summary = rerank(args.samples, args.train, args.weights, args.out, args.sentiment, args.copy_words, args.seed,
                     args.judge, args.dictionary, args.candidates, args.held_out, args.fold_seeds)
    print(summary["table"], file=sys.stderr)
    return summary


def run_judge(args: argparse.Namespace) -> dict:
    from training.discriminator import train_judge

    return train_judge(args.samples, args.train, args.out, args.seed, not args.quiet, args.dictionary)


def run_export(args: argparse.Namespace) -> dict:
    from training.export import export

    return export(args.model, args.out, kind=args.kind, name=args.name, dtype=args.dtype,
                  sources=args.sources, real_tweets=args.real_tweets,
                  data_stats=args.data_stats, evaluation=args.evaluation, commands=args.commands)


def _dictionary_flag(parser: argparse.ArgumentParser) -> None:
    from training.invented import DEFAULT_DICTIONARY

    parser.add_argument("--dictionary", type=Path, default=DEFAULT_DICTIONARY,
                        help="Hunspell .dic/.aff stem for invented words (Debian's hunspell-es, es_CL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="politico-train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML file with one table per command")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("prepare", help="clean and annotate tweets, split them")
    p.add_argument("--tweets", type=Path, nargs="+", required=True, help="CSV, JSONL or Parquet")
    p.add_argument("--authors", type=Path, help="author, party, coalition, side (none: corpus only)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--text-column", help="default: the first of text, full_text, tweet, texto")
    p.add_argument("--author-column", help="default: the first of screen_name, author, autor, user")
    p.add_argument("--validation", type=float, default=0.1, help="share held out to choose settings on")
    p.add_argument("--test", type=float, default=0.1, help="share held out for the final report")
    p.add_argument("--retweets", action="store_true",
                   help="keep the text of retweets (corpora without authors: more Spanish)")
    p.add_argument("--exclude", type=Path, nargs="*",
                   help="held-out tweets (JSONL or text): drop texts sharing --exclude-words words with them")
    p.add_argument("--exclude-words", type=int, default=8)
    p.add_argument("--exclude-authors", type=Path,
                   help="authors table: drop retweets of these accounts even with --retweets")
    p.add_argument("--min-words", type=int, default=4, help="drop tweets with fewer words")
    p.add_argument("--sentiment", default="auto", choices=["auto", "lexicon", "pysentimiento"])
    p.add_argument("--entities", default="auto", choices=["auto", "heuristic", "spacy"])
    p.add_argument("--max-entities", type=int, default=3)
    p.add_argument("--max-phrases", type=int, default=2)
    p.add_argument("--skip-unknown-authors", action="store_true")
    p.set_defaults(handler=run_prepare)

    p = commands.add_parser("prose", help="Spanish paragraphs from unpacked Debian packages")
    p.add_argument("--unpacked", type=Path, nargs="+", required=True, help="folders of dpkg-deb -x output")
    p.add_argument("--out", type=Path, required=True, help="text file, one paragraph a line")
    p.add_argument("--min-words", type=int, default=8)
    p.set_defaults(handler=run_prose)

    p = commands.add_parser("tokenizer", help="train a byte-level BPE tokenizer")
    p.add_argument("--corpus", type=Path, nargs="+", required=True, help="text files or tables")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--text-field", help="column of tables (default: tweet, text, ...)")
    p.set_defaults(handler=run_tokenizer)

    p = commands.add_parser("pretrain", help="GPT-2 from scratch on a text corpus")
    p.add_argument("--tokenizer", type=Path, required=True)
    p.add_argument("--corpus", type=Path, nargs="+", required=True)
    p.add_argument("--validation", type=Path, nargs="*", help="held-out text for perplexity")
    p.add_argument("--text-field")
    _shape_flags(p)
    _training_flags(p, lr=6e-4, epochs=1.0)
    p.set_defaults(handler=run_pretrain)

    p = commands.add_parser("finetune", help="causal fine-tuning on tweets (BOS/EOS per tweet)")
    p.add_argument("--base", required=True, help="model folder or hub id")
    p.add_argument("--tweets", type=Path, nargs="+", required=True, help="prepare's JSONL or text")
    p.add_argument("--validation", type=Path, nargs="*")
    p.add_argument("--text-field")
    p.add_argument("--block-size", type=int, default=0, help="0 = the model's positions")
    _training_flags(p, lr=5e-5, epochs=10.0)
    p.set_defaults(handler=run_finetune)

    p = commands.add_parser("contextual", help="control-token training")
    p.add_argument("--base", required=True, help="model folder or hub id")
    p.add_argument("--train", type=Path, required=True, help="prepare's train.jsonl")
    p.add_argument("--validation", type=Path, help="prepare's validation.jsonl")
    p.add_argument("--block-size", type=int, default=0, help="0 = the model's positions")
    p.add_argument("--field-dropout", type=float, default=0.0,
                   help="drop optional context fields with this probability (0 = thesis)")
    _training_flags(p, lr=5e-5, epochs=3.0)
    p.set_defaults(handler=run_contextual)

    p = commands.add_parser("evaluate", help="perplexity and control adherence, Markdown report")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--train", type=Path, required=True, help="prepare's train.jsonl (classifier, copies)")
    p.add_argument("--held-out", "--validation", dest="held_out", type=Path, required=True,
                   help="prepare's validation.jsonl (choosing settings) or test.jsonl (the report)")
    p.add_argument("--out", type=Path, required=True, help="folder for report.md, plots, samples")
    p.add_argument("--kind", default="controlled", choices=["controlled", "casual"])
    p.add_argument("--prompt", default="user", choices=["user", "full"],
                   help="user: labels, sentiment and one topic; full: the whole held-out context")
    p.add_argument("--side", default="", help="casual models: the side they were trained on")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--candidates", type=int, default=8, help="tweets per prompt, ranked (as bot.candidates)")
    p.add_argument("--bot-config", type=Path, help="read decoding and ranking from the bot's config.toml")
    p.add_argument("--bot-model", default="demo", help="whose [generation.models.NAME.decoding] to read")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="decoding override, e.g. --set temperature=0.7 --set guide_bias=0")
    p.add_argument("--rank", action="append", metavar="KEY=VALUE",
                   help="ranking override, e.g. --rank side=2 --rank enabled=false")
    p.add_argument("--sentiment", default="auto", choices=["auto", "lexicon", "pysentimiento"])
    p.add_argument("--copy-words", type=int, default=8, help="memorization: copied run length")
    p.add_argument("--latency-requests", type=int, default=20, help="lone requests timed for latency")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--human-db", default="", help="the bot's database URL: add the share of ¿Real o ficticio? "
                   "votes this model's tweets won (the bot names it as its folder: models/demo → demo)")
    p.add_argument("--prompt-sets", default="both", choices=["both", "paired"],
                   help="both: the paired prompts and prompts as users type them (samples-user.jsonl)")
    _dictionary_flag(p)
    p.set_defaults(handler=run_evaluate)

    p = commands.add_parser("rerank", help="compare ranking weights on candidates evaluate already drew")
    p.add_argument("--samples", type=Path, required=True, help="evaluate's samples.jsonl")
    p.add_argument("--train", type=Path, required=True, help="prepare's train.jsonl (classifier, copies)")
    p.add_argument("--weights", nargs="+", required=True, metavar="K=V,K=V",
                   help='weight settings to compare, e.g. "side=1,open=3" "side=2,open=3"')
    p.add_argument("--out", type=Path, help="JSON file for the results")
    p.add_argument("--sentiment", default="lexicon", choices=["auto", "lexicon", "pysentimiento"])
    p.add_argument("--copy-words", type=int, default=8)
    p.add_argument("--judge", type=Path, help="a folder with judge.safetensors: gives every candidate its "
                   "parts (real, unknown, lean, copied), so their weights can be tried")
    p.add_argument("--held-out", type=Path, help="the split the samples were drawn on: side is also checked "
                   "by a classifier trained on its tweets (side_adherence_check)")
    p.add_argument("--candidates", type=int, help="choose among each prompt's first N candidates only "
                   "(an engine shedding candidates under load)")
    p.add_argument("--fold-seeds", type=int, default=1, metavar="N",
                   help="also give realism (realism_accuracy) as its mean over N fold splits (realism_folds): one split "
                   "moves it by about ±0.015 on 300 tweets")
    _dictionary_flag(p)
    p.set_defaults(handler=run_rerank)

    p = commands.add_parser("judge", help="the reader's judge ranking uses: the model's samples against real tweets")
    p.add_argument("--samples", type=Path, nargs="+", required=True,
                   help="evaluate's samples.jsonl, drawn on prompts of the training split")
    p.add_argument("--train", type=Path, required=True, help="prepare's train.jsonl (the real tweets)")
    p.add_argument("--out", type=Path, required=True, help="the model folder it ranks for (judge.safetensors)")
    _dictionary_flag(p)
    p.set_defaults(handler=run_judge)

    p = commands.add_parser("export", help="Hugging Face folder with a model card")
    p.add_argument("--model", required=True, help="trained model folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--kind", default="controlled", choices=["controlled", "casual"])
    p.add_argument("--name", default="", help="title of the model card")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--data-stats", type=Path, help="prepare's stats.json")
    p.add_argument("--evaluation", type=Path, help="evaluate's metrics.json")
    p.add_argument("--sources", type=Path, help="Markdown: the training text's sources and licences")
    p.add_argument("--real-tweets", type=Path,
                   help="prepare's test.jsonl: up to 1,000 complete tweets shipped as test_tweets.jsonl")
    p.add_argument("--commands", type=Path, help="script with the commands that made the model")
    p.set_defaults(handler=run_export)
    return parser


def _config_defaults(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Apply ``--config``'s table for the chosen command as that sub-parser's defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, rest = pre.parse_known_args(argv)
    if not known.config:
        return
    try:
        table = tomllib.loads(Path(known.config).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{known.config}: {exc}") from exc
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    name = next((a for a in rest if a in sub.choices), None)
    if name is None:
        return
    command = sub.choices[name]
    section = table.get(name, {})
    dests = {a.dest: a for a in command._actions}
    defaults: dict[str, Any] = {}
    for key, value in section.items():
        dest = key.replace("-", "_")
        if dest not in dests:
            raise InputError(f"{known.config}: [{name}] has unknown key {key!r}")
        action = dests[dest]
        if action.type is Path:
            value = [Path(v) for v in value] if isinstance(value, list) else Path(value)
        defaults[dest] = value
        action.required = False
    command.set_defaults(**defaults)
    for key in ("seed", "quiet"):
        if key in table:
            parser.set_defaults(**{key: table[key]})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        _config_defaults(parser, argv)
        args = parser.parse_args(argv)
        result = args.handler(args)
    except InputError as exc:
        print(f"politico-train: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
