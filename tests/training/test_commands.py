"""Every ``politico-train`` command end to end on synthetic tweets and a tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.training.conftest import AUTHORS, synthetic_rows, write_csv
from training.cli import main
from training.realism import two_sample_accuracy

TINY = ["--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--n-positions", "128"]
LOOP = ["--batch-size", "4", "--threads", "1", "--logging-steps", "1"]


def run(*args: str | Path) -> None:
    assert main(["--quiet", *map(str, args)]) == 0


def fails(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    assert main(["--quiet", *map(str, args)]) == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """prepare → tokenizer → pretrain → contextual, once for the module."""
    root = tmp_path_factory.mktemp("pipeline")
    tweets = write_csv(root / "tweets.csv", synthetic_rows())
    authors = write_csv(root / "autores.csv", [
        {"screen_name": a, "partido": p, "coalicion": c, "lado": s} for a, p, c, s in AUTHORS
    ])
    data, tok, base, ctx = root / "data", root / "tok", root / "base", root / "ctx"
    run("prepare", "--tweets", tweets, "--authors", authors, "--out", data, "--validation", "0.25",
        "--sentiment", "lexicon", "--entities", "heuristic")
    run("tokenizer", "--corpus", data / "corpus.txt", "--out", tok, "--vocab-size", "400", "--min-frequency", "1")
    run("pretrain", "--tokenizer", tok, "--corpus", data / "corpus.txt", "--out", base, *TINY, *LOOP,
        "--max-steps", "2", "--lr", "1e-3")
    run("contextual", "--base", base, "--train", data / "train.jsonl", "--validation", data / "validation.jsonl",
        "--out", ctx, *LOOP, "--max-steps", "2", "--save-steps", "1", "--field-dropout", "0.3")
    return {"root": root, "data": data, "tok": tok, "base": base, "ctx": ctx, "tweets": tweets, "authors": authors}


def test_prepare_writes_split_subsets_and_counts(pipeline: dict[str, Path]) -> None:
    data = pipeline["data"]
    stats = json.loads((data / "stats.json").read_text())
    assert stats["cleaning"]["retweets"] == 1
    assert stats["cleaning"]["duplicates"] == 1
    assert stats["cleaning"]["short"] == 1
    train = [json.loads(x) for x in (data / "train.jsonl").read_text().splitlines()]
    validation = [json.loads(x) for x in (data / "validation.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (data / "test.jsonl").read_text().splitlines()]
    assert train and validation and test
    splits = [{r["tweet"] for r in split} for split in (train, validation, test)]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert stats["rows"]["all"] == len(train) + len(validation) + len(test)
    derecha = [json.loads(x) for x in (data / "derecha" / "train.jsonl").read_text().splitlines()]
    assert derecha and {r["lado"] for r in derecha} == {"derecha"}
    assert {r["partido"] for r in derecha} == {"UDI", "RN"}
    row = next(r for r in train if "@JuanPerez" in r["tweet"])
    assert "@JuanPerez" in row["entidades"]
    assert row["hashtags"] == ["Educación"]
    assert row["sentimiento"] in {"POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"}
    assert not any("t.co" in r["tweet"] or "…" in r["tweet"] for r in train + validation + test)
    assert stats["labels"]["lado"] == {
        side: sum(r["lado"] == side for r in train + validation + test) for side in stats["labels"]["lado"]
    }


def test_prepare_split_is_deterministic(pipeline: dict[str, Path]) -> None:
    again = pipeline["root"] / "again"
    run("prepare", "--tweets", pipeline["tweets"], "--authors", pipeline["authors"], "--out", again,
        "--validation", "0.25", "--sentiment", "lexicon", "--entities", "heuristic")
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl"):
        assert (again / name).read_text() == (pipeline["data"] / name).read_text()


def test_bad_input_is_one_clear_line(pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = pipeline["root"]
    no_text = write_csv(root / "no_text.csv", [{"screen_name": "ana_derecha", "contenido": "hola"}])
    assert "no text column" in fails(capsys, "prepare", "--tweets", no_text, "--out", root / "x")
    bad_side = write_csv(root / "bad_side.csv", [
        {"screen_name": "ana_derecha", "partido": "UDI", "coalicion": "CV", "lado": "arriba"}
    ])
    err = fails(capsys, "prepare", "--tweets", pipeline["tweets"], "--authors", bad_side, "--out", root / "x")
    assert "unknown side 'arriba'" in err
    few = write_csv(root / "few.csv", [{"screen_name": "ana_derecha", "partido": "UDI", "coalicion": "CV", "lado": "derecha"}])
    err = fails(capsys, "prepare", "--tweets", pipeline["tweets"], "--authors", few, "--out", root / "x")
    assert "missing from the authors table" in err
    empty = write_csv(root / "empty.csv", [{"screen_name": "a", "text": "RT @b: nada"}])
    assert "no tweet left" in fails(capsys, "prepare", "--tweets", empty, "--out", root / "x")
    (root / "blank.txt").write_text("\n\n", encoding="utf-8")
    assert "corpus is empty" in fails(capsys, "tokenizer", "--corpus", root / "blank.txt", "--out", root / "t")
    bad_label = root / "bad.jsonl"
    bad_label.write_text(json.dumps({"tweet": "hola a todos los vecinos", "sentimiento": "FELIZ"}) + "\n")
    err = fails(capsys, "contextual", "--base", pipeline["base"], "--train", bad_label, "--out", root / "c")
    assert "unknown sentiment 'FELIZ'" in err


def test_tokenizer_registers_control_tokens(pipeline: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(pipeline["tok"]))
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("[TWEET]", "<|endoftext|>", "<|endoftext|>")
    ids = tokenizer.encode(" [PARTIDO] UDI [TWEET] hola", add_special_tokens=False)
    assert tokenizer.convert_tokens_to_ids("[PARTIDO]") in ids
    assert tokenizer.convert_tokens_to_ids("[TWEET]") in ids
    assert len(tokenizer) == 400


def test_pretrain_and_contextual_save_models_and_checkpoints(pipeline: dict[str, Path]) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(pipeline["base"]))
    assert (config.n_layer, config.n_embd, config.n_positions, config.vocab_size) == (1, 32, 128, 400)
    run_record = json.loads((pipeline["ctx"] / "run.json").read_text())
    assert run_record["max_steps"] == 2 and "eval_perplexity" in run_record["metrics"]
    assert (pipeline["ctx"] / "checkpoint-2").is_dir()


def test_resume_continues_from_the_last_checkpoint(pipeline: dict[str, Path]) -> None:
    run("contextual", "--base", pipeline["base"], "--train", pipeline["data"] / "train.jsonl",
        "--out", pipeline["ctx"], *LOOP, "--max-steps", "3", "--save-steps", "1", "--resume")
    state = json.loads((pipeline["ctx"] / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert len(state["log_history"]) >= 3  # steps 1-2 came from the first run's checkpoint


def test_resume_without_checkpoint_is_an_error(pipeline: dict[str, Path], capsys) -> None:
    err = fails(capsys, "contextual", "--base", pipeline["base"], "--train", pipeline["data"] / "train.jsonl",
                "--out", pipeline["root"] / "fresh", "--max-steps", "1", "--resume")
    assert "no checkpoint" in err


def test_finetune_on_one_side(pipeline: dict[str, Path]) -> None:
    out = pipeline["root"] / "derecha"
    run("finetune", "--base", pipeline["base"], "--tweets", pipeline["data"] / "derecha" / "train.jsonl",
        "--out", out, *LOOP, "--max-steps", "2", "--block-size", "32")
    assert (out / "model.safetensors").is_file()


def test_evaluate_writes_report_and_plots(pipeline: dict[str, Path]) -> None:
    out = pipeline["root"] / "eval"
    config = pipeline["root"] / "bot.toml"
    config.write_text("[generation.models.demo.decoding]\nmax_new_tokens = 8\nguide_bias = 4.0\n"
                      "[generation.ranking]\nside = 2.0\n", encoding="utf-8")
    run("evaluate", "--model", pipeline["ctx"], "--train", pipeline["data"] / "train.jsonl",
        "--held-out", pipeline["data"] / "validation.jsonl", "--out", out, "--samples", "6",
        "--sentiment", "lexicon", "--threads", "1", "--candidates", "3", "--bot-config", config,
        "--set", "temperature=0.7", "--latency-requests", "2")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["candidates"] == 3 and metrics["split"] == "validation"
    # Decoding and ranking: the bot config's values, then the overrides.
    assert metrics["decoding"]["guide_bias"] == 4.0 and metrics["decoding"]["temperature"] == 0.7
    assert metrics["decoding"]["max_new_tokens"] == 8 and metrics["ranking"]["side"] == 2.0
    for name in ("side_adherence", "side_adherence_check", "sentiment_adherence", "memorization", "distinct_2",
                 "open_share", "realism_accuracy", "realism_accuracy_unpaired"):
        assert 0.0 <= metrics[name] <= 1.0
    assert metrics["perplexity"] > 1.0 and metrics["latency_ms_median"] > 0
    assert metrics["prompts"] == 6
    report = (out / "report.md").read_text()
    assert "validation split" in report and "realism_accuracy" in report and "20 random samples" in report
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6
    # Every candidate is kept with its ranking score, best first; the shown tweet is the best.
    for sample in samples:
        scores = [c["score"] for c in sample["candidates"]]
        assert scores == sorted(scores, reverse=True) and sample["generated"] == sample["candidates"][0]["text"]
        assert {"fit", "side", "sentiment", "open"} <= set(sample["candidates"][0]["parts"])
    alone = pipeline["root"] / "eval-alone"
    run("evaluate", "--model", pipeline["ctx"], "--train", pipeline["data"] / "train.jsonl",
        "--validation", pipeline["data"] / "validation.jsonl", "--out", alone, "--samples", "2",
        "--candidates", "1", "--sentiment", "lexicon", "--threads", "1", "--rank", "enabled=false",
        "--set", "max_new_tokens=4", "--latency-requests", "0")
    metrics = json.loads((alone / "metrics.json").read_text())
    assert metrics["ranking"]["enabled"] is False and "latency_ms_median" not in metrics



def test_evaluate_measures_prompts_as_users_type_them(pipeline: dict[str, Path]) -> None:
    out = pipeline["root"] / "eval"  # written by the test above
    if not (out / "metrics.json").exists():
        pytest.skip("runs after test_evaluate_writes_report_and_plots")
    metrics = json.loads((out / "metrics.json").read_text())
    user = metrics["user_style"]
    assert user["prompts"] >= 1 and 0.0 <= user["side_adherence"] <= 1.0
    rows = [json.loads(x) for x in (out / "samples-user.jsonl").read_text().splitlines()]
    # Every prompt is recorded as asked; the tiny model's tweets are random, so a prompt whose
    # every candidate was too short is recorded blocked (no candidates), as evaluate reports it.
    assert len(rows) == user["prompts"] and all(r["prompt"]["asked"] for r in rows)
    assert sum(bool(r["candidates"]) for r in rows) > len(rows) // 2
    assert "## Prompts as users type them" in (out / "report.md").read_text()
    # Invented words need spylls and the Debian dictionary; without them, one line says why.
    assert ("invented_share_skipped" in metrics) == math.isnan(metrics["invented_share"])


def test_evaluate_refuses_a_bad_override(pipeline: dict[str, Path], capsys) -> None:
    err = fails(capsys, "evaluate", "--model", pipeline["ctx"], "--train", pipeline["data"] / "train.jsonl",
                "--held-out", pipeline["data"] / "validation.jsonl", "--out", pipeline["root"] / "x",
                "--set", "temperature=hot")
    assert "temperature" in err


def test_config_file_supplies_flags(pipeline: dict[str, Path], capsys) -> None:
    root = pipeline["root"]
    config = root / "run.toml"
    config.write_text(
        f'seed = 7\n[tokenizer]\ncorpus = ["{pipeline["data"] / "corpus.txt"}"]\nout = "{root / "tok2"}"\n'
        'vocab-size = 400\nmin_frequency = 1\n', encoding="utf-8"
    )
    run("--config", config, "tokenizer")
    assert json.loads((root / "tok2" / "tokenizer_config.json").read_text())["bos_token"] == "[TWEET]"
    run("--config", config, "tokenizer", "--vocab-size", "450", "--out", root / "tok3")
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(str(root / "tok3"))) == 450
    config.write_text("[tokenizer]\nvocabulary = 3\n", encoding="utf-8")
    assert "unknown key 'vocabulary'" in fails(capsys, "--config", config, "tokenizer")


@pytest.fixture(scope="module")
def exported(pipeline: dict[str, Path]) -> Path:
    out = pipeline["root"] / "export"
    commands = pipeline["root"] / "recipe.sh"
    commands.write_text("politico-train contextual --base base --train train.jsonl --out ctx\n")
    run("export", "--model", pipeline["ctx"], "--out", out, "--name", "Prueba",
        "--data-stats", pipeline["data"] / "stats.json", "--commands", commands)
    return out


def test_export_writes_a_hugging_face_folder_with_a_card(exported: Path) -> None:
    names = {p.name for p in exported.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md"} <= names
    assert not any(n.startswith("checkpoint") for n in names)
    card = (exported / "README.md").read_text()
    assert "# Prueba" in card and "politico-train contextual" in card and "## Data" in card
    generation = json.loads((exported / "generation_config.json").read_text())
    assert generation["do_sample"] is True and generation["top_p"] == 0.9


def test_exported_model_generates_from_an_encoded_prompt(exported: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generation.prompts import ControlFields, encode_prompt

    tokenizer = AutoTokenizer.from_pretrained(str(exported))
    model = AutoModelForCausalLM.from_pretrained(str(exported))
    prompt = encode_prompt(tokenizer, ControlFields("Chile Vamos", "UDI", "POSITIVE", ("Temuco",)))
    ids = torch.tensor([prompt.input_ids])
    out = model.generate(input_ids=ids, token_type_ids=torch.tensor([prompt.token_type_ids]),
                         attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=5)
    assert out.shape[1] > ids.shape[1]


async def test_exported_model_runs_in_the_bots_engine(exported: Path) -> None:
    from generation.prompts import ControlFields
    from generation.serving.backends.local import LocalBackend
    from generation.settings import GenerationSettings
    from generation.types import PromptSpec, SamplingParams

    settings = GenerationSettings.model_validate(
        {"default_model": "demo", "models": {"demo": {"path": str(exported), "kind": "controlled", "device": "cpu"}}}
    )
    backend = LocalBackend(settings)
    await backend.start()
    try:
        prompt = PromptSpec("controlled", ControlFields("Chile Vamos", "UDI", "POSITIVE", ("Temuco",)))
        completions = await backend.complete("demo", prompt, SamplingParams(max_new_tokens=6, ignore_eos=True), seed=1)
    finally:
        await backend.aclose()
    assert len(completions) == 1 and completions[0].tokens == 6


def test_export_ships_complete_test_tweets_and_names_the_sources(pipeline: dict[str, Path]) -> None:
    out = pipeline["root"] / "export-shipped"
    sources = pipeline["root"] / "sources.md"
    sources.write_text("## Pretraining text\n\n- fortunes-es (GPL-2+)\n", encoding="utf-8")
    rows = [json.loads(x) for x in (pipeline["data"] / "test.jsonl").read_text().splitlines()]
    rows[0]["completo"] = False
    held_out = pipeline["root"] / "held.jsonl"
    held_out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run("export", "--model", pipeline["ctx"], "--out", out, "--sources", sources, "--real-tweets", held_out)
    shipped = [json.loads(x) for x in (out / "test_tweets.jsonl").read_text().splitlines()]
    assert [r["tweet"] for r in shipped] == [r["tweet"] for r in rows[1:]]
    card = (out / "README.md").read_text()
    assert "fortunes-es (GPL-2+)" in card and f"{len(rows) - 1} complete tweets of the test split" in card


def test_rerank_compares_weights_on_drawn_candidates(pipeline: dict[str, Path], capsys) -> None:
    samples = pipeline["root"] / "drawn.jsonl"
    prompt = {"lado": "derecha", "sentimiento": "POSITIVE", "entidades": ["Temuco"]}
    rows = [{"prompt": prompt, "real": f"Gran jornada en Temuco con los vecinos {i}.", "candidates": [
        {"text": "Gracias a todos por venir y", "parts": {"fit": -1.0, "topic": 0.0, "open": 1.0}},
        {"text": f"Gran jornada en Temuco, seguimos {i}.", "parts": {"fit": -3.0, "topic": 1.0, "open": 0.0}},
    ]} for i in range(6)]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run("rerank", "--samples", samples, "--train", pipeline["data"] / "train.jsonl",
        "--weights", "fit=1,topic=0,open=0", "fit=1,topic=2,open=3", "--out", pipeline["root"] / "rerank.json")
    fit_only, balanced = json.loads((pipeline["root"] / "rerank.json").read_text())["results"]
    assert (fit_only["open_share"], fit_only["topic_inclusion"]) == (1.0, 0.0)
    assert (balanced["open_share"], balanced["topic_inclusion"]) == (0.0, 1.0)
    # Side is checked by a second classifier only when told which split the draws came from.
    assert math.isnan(balanced["side_adherence_check"])
    run("rerank", "--samples", samples, "--train", pipeline["data"] / "train.jsonl", "--held-out",
        pipeline["data"] / "validation.jsonl", "--weights", "fit=1,topic=2,open=3", "--out", pipeline["root"] / "rr.json")
    checked = json.loads((pipeline["root"] / "rr.json").read_text())["results"][0]
    assert 0.0 <= checked["side_adherence_check"] <= 1.0 and checked["side_adherence"] == balanced["side_adherence"]
    assert "| fit=1,topic=2,open=3 |" in capsys.readouterr().err
    # Realism over several fold splits: their mean, beside the one split's figure.
    run("rerank", "--samples", samples, "--train", pipeline["data"] / "train.jsonl", "--fold-seeds", "3",
        "--weights", "fit=1,topic=2,open=3", "--out", pipeline["root"] / "folds.json")
    folds = json.loads((pipeline["root"] / "folds.json").read_text())["results"][0]
    shown = [f"Gran jornada en Temuco, seguimos {i}." for i in range(6)]
    assert folds["realism_folds"] == pytest.approx(
        sum(two_sample_accuracy(shown, [r["real"] for r in rows], seed=s) for s in range(3)) / 3)
    assert "realism_folds" not in balanced and "| realism_folds |" in capsys.readouterr().err
    assert "--fold-seeds must be 1 or more" in fails(capsys, "rerank", "--samples", samples, "--train",
                                                     pipeline["data"] / "train.jsonl", "--fold-seeds", "0",
                                                     "--weights", "side=1")
    assert "already ranked" in fails(capsys, "rerank", "--samples", samples, "--train",
                                     pipeline["data"] / "train.jsonl", "--weights", "enabled=false")
