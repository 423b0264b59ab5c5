"""``politico bench``: what batching buys, measured in one run on this machine.

Builds a GPT-2 small sized model (124M parameters, random weights: speed does not depend on what
the weights say, and nothing is downloaded) with a thesis-style tokenizer, then times, for
fixed-length tweets: the thesis's decoding (10 beams + sampling) one request at a time, plain
sampling one request at a time, one bare batched ``generate`` call, and the engine with 1, 8 and
32 concurrent clients, while a ticker measures how late the event loop wakes up. Then the same
model with int8 weights (``quantize = "int8"``) in the engine at 1 and 32 clients, beside
CTranslate2's int8 (when the optional ``ctranslate2`` package is installed) at batch 1 and 32 as
the reference. Ratios within one run are what count: absolute figures depend on the machine and
on what else it is doing. At one client the engine and CTranslate2 take turns, request by
request, and the figure is the median of each pair's ratio, so a drift in the machine's speed
(2x within minutes on a shared one) falls on both sides of every pair.

CTranslate2 runs in a process of its own: once it has decoded in a process, torch's decoding
in that process runs up to 2x slower for good (measured: 212-218 then 344-423 ms per tweet at
batch 1), while CTranslate2 is as fast beside torch as alone. Neither shares a process with the
other when serving, so neither does here.

Last, one ``/tuit`` of the demo model exactly as the bot decodes it (``tuit``): the bot's
generation service over the in-process engine, 8 candidates, topic and contrast guidance and the
ranking pass, with the decoding and ranking of ``config.toml``, one lone request at a time.

``--device cuda`` runs every phase on the GPU (the model in bfloat16, float16 where the GPU has
no bfloat16), adds 128 and 512 clients, and skips the int8 and CTranslate2 phases, which run on
the CPU only. Every timed call runs warm: the first call of each batch size is an untimed
warm-up, so kernel loading and the allocator's first growth do not land in a phase.

Run ``python -m generation.measuring.bench`` (or ``politico bench``); ``--quick`` uses a tiny model and a
few requests (a smoke test), ``--out FILE`` also writes the JSON to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from generation.config import ConfigError, add_config_argument
from generation.measuring import ctranslate2_anchor, tuit
from generation.measuring.percentiles import percentile
from generation.prompts import CONTROL_TOKENS, TWEET, ControlFields, Encoded, encode_prompt
from generation.registry import LoadedModel, ModelRegistry, on_own_thread, pick_device
from generation.serving.engine import Engine
from generation.settings import EngineSettings, GenerationSettings, ModelSpec
from generation.types import SamplingParams

CORPUS = [
    "El gobierno anunció hoy una reforma a las pensiones para todos los chilenos.",
    "Vamos a defender la educación pública, gratuita y de calidad en todo Chile.",
    "La seguridad ciudadana es prioridad: más carabineros en las calles.",
    "Hoy conversamos con vecinos de Puente Alto sobre vivienda y transporte.",
    "No podemos aceptar más abusos: salud digna para las familias de Chile.",
]
#: Prompts of different lengths, so batches are really left-padded.
FIELDS = [
    ControlFields(partido="UDI"),
    ControlFields(coalicion="Chile Vamos", partido="RN", sentimiento="POSITIVE"),
    ControlFields(coalicion="Frente Amplio", partido="RD", entidades=("Valparaíso",), hashtags=("Chile",)),
    ControlFields(coalicion="Nueva Mayoría", partido="PS", frases=("salud digna para las familias",)),
]


@dataclass(frozen=True)
class Plan:
    """Model size and how many requests each phase makes."""

    layers: int
    width: int
    heads: int
    vocab: int
    positions: int
    tokens: int
    thesis_requests: int
    sequential_requests: int
    bare_batches: int
    concurrency: tuple[int, ...]
    requests_per_client: dict[int, int]
    #: How long the ticker runs alone first, to measure the machine's own scheduling noise.
    idle_probe_s: float
    #: Full batches CTranslate2 decodes at the top concurrency (as many tweets as the engine's).
    anchor_batches: int
    #: int8 engine and CTranslate2 requests at batch 1, taken in turns (one pair each).
    int8_pairs: int
    #: Batch sizes of bare batched ``generate`` (each next to the engine at as many clients).
    bare_sizes: tuple[int, ...]
    #: New tokens of the untimed warm-up call before each batch size is timed.
    warmup_tokens: int
    #: Lone ``/tuit`` requests timed (after two untimed ones).
    tuit_requests: int


FULL = Plan(12, 768, 12, 50257, 1024, 40, 2, 6, 1, (1, 8, 32), {1: 6, 8: 2, 32: 2}, 3.0, 2, 12, (32,), 2, 30)
QUICK = Plan(2, 64, 2, 1000, 128, 8, 1, 2, 1, (1, 4), {1: 2, 4: 1}, 0.3, 1, 2, (4,), 2, 2)
#: On a GPU batching pays far beyond 32 rows, and a first call of a shape loads kernels lazily
#: and grows the allocator, so its warm-up decodes the full tweet.
FULL_CUDA = replace(
    FULL, concurrency=(1, 8, 32, 128, 512), requests_per_client={1: 6, 8: 2, 32: 2, 128: 2, 512: 2},
    bare_sizes=(32, 128, 512), warmup_tokens=FULL.tokens,
)


CPU = torch.device("cpu")


def plan_for(quick: bool, device: torch.device) -> Plan:
    """The quick smoke test anywhere; otherwise the CPU plan (comparable with the recorded runs)
    or the GPU's, with its larger batches."""
    if quick:
        return QUICK
    return FULL_CUDA if device.type == "cuda" else FULL


def build_model(folder: Path, plan: Plan) -> Path:
    """A randomly initialised GPT-2 and a byte-level BPE tokenizer with the thesis's tokens."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS * 4, vocab_size=min(plan.vocab, 600), min_frequency=1,
        special_tokens=["<|endoftext|>", *CONTROL_TOKENS], show_progress=False,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=TWEET, eos_token="<|endoftext|>",
        pad_token="<|endoftext|>", unk_token="<|endoftext|>",
        additional_special_tokens=[t for t in CONTROL_TOKENS if t != TWEET],
    )
    config = GPT2Config(
        vocab_size=plan.vocab, n_positions=plan.positions, n_embd=plan.width, n_layer=plan.layers,
        n_head=plan.heads, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "tweets_per_s": round(len(latencies) / seconds, 3),
        "latency_ms": {
            "mean": round(statistics.fmean(ordered) * 1000, 1),
            "p50": round(percentile(ordered, 0.5) * 1000, 1),
            "p95": round(percentile(ordered, 0.95) * 1000, 1),
        },
    }


class LagProbe:
    """How late a 5 ms ticker wakes up: the event loop's responsiveness while work runs."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(time.perf_counter() - before - self.interval)

    def __enter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def report(self) -> dict[str, float]:
        ordered = sorted(self.lags) or [0.0]
        return {
            "max": round(ordered[-1] * 1000, 2),
            "p99": round(percentile(ordered, 0.99) * 1000, 2),
            "ticks": len(self.lags),
            "over_50ms": sum(lag > 0.05 for lag in self.lags),
        }


class Bench:
    def __init__(self, lm: LoadedModel, plan: Plan) -> None:
        self.lm = lm
        self.plan = plan
        self.prompts: list[Encoded] = [encode_prompt(lm.tokenizer, f) for f in FIELDS]
        self.eos = lm.tokenizer.eos_token_id

    def prompt(self, i: int) -> Encoded:
        return self.prompts[i % len(self.prompts)]

    @torch.inference_mode()
    def generate(self, indices: list[int], tokens: int | None = None, **decoding: Any) -> None:
        """One bare ``generate`` call over left-padded prompts (the thesis's own way), on the
        model's device; it returns once the GPU, if any, has finished."""
        prompts = [self.prompt(i) for i in indices]
        width = max(len(p.input_ids) for p in prompts)
        ids = torch.full((len(prompts), width), self.eos, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(prompts):
            n = len(p.input_ids)
            ids[row, width - n:] = torch.tensor(p.input_ids)
            types[row, width - n:] = torch.tensor(p.token_type_ids)
            mask[row, width - n:] = 1
        device = self.lm.device
        tokens = tokens or self.plan.tokens
        self.lm.model.generate(
            ids.to(device), attention_mask=mask.to(device), token_type_ids=types.to(device),
            max_new_tokens=tokens, min_new_tokens=tokens, pad_token_id=self.eos, **decoding,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def sequential(self, name: str, count: int, **decoding: Any) -> dict[str, Any]:
        self.generate([0], tokens=self.plan.warmup_tokens, **decoding)  # warm-up, untimed
        latencies = []
        started = time.perf_counter()
        for i in tqdm(range(count), desc=name, file=sys.stderr, leave=False):
            t = time.perf_counter()
            torch.manual_seed(i)
            self.generate([i], **decoding)
            latencies.append(time.perf_counter() - t)
        return summary(latencies, time.perf_counter() - started)

    def batched(self, size: int, runs: int) -> dict[str, Any]:
        sampling: dict[str, Any] = {"do_sample": True, "temperature": 0.9, "top_p": 0.9}
        self.generate(list(range(size)), tokens=self.plan.warmup_tokens, **sampling)  # warm-up
        latencies = []
        started = time.perf_counter()
        for run in tqdm(range(runs), desc=f"bare generate x{size}", file=sys.stderr, leave=False):
            t = time.perf_counter()
            torch.manual_seed(run)
            self.generate(list(range(size)), **sampling)
            latencies.extend([time.perf_counter() - t] * size)
        return summary(latencies, time.perf_counter() - started)

    def params(self, tokens: int | None = None) -> SamplingParams:
        """What every engine request decodes: the plan's tokens, temperature 0.9, top_p 0.9."""
        tokens = tokens or self.plan.tokens
        return SamplingParams(max_new_tokens=tokens, min_new_tokens=tokens, temperature=0.9, top_p=0.9)

    async def warm_up(self, engine: Engine, clients: int) -> None:
        """``clients`` concurrent untimed requests of the warm-up length: the batch size the
        phase is about to time, run once first."""
        short = self.params(self.plan.warmup_tokens)
        await asyncio.gather(*(
            engine.generate(self.lm.name, self.prompt(i).input_ids, self.prompt(i).token_type_ids, short, seed=i)
            for i in range(clients)
        ))

    async def request(self, engine: Engine, i: int) -> float:
        """One engine request for prompt ``i`` with seed ``i``; its latency in seconds."""
        p = self.prompt(i)
        t = time.perf_counter()
        await engine.generate(self.lm.name, p.input_ids, p.token_type_ids, self.params(), seed=i)
        return time.perf_counter() - t

    async def engine(self, engine: Engine, clients: int, per_client: int) -> dict[str, Any]:
        """``clients`` clients, each sending its next request when the last is answered; timed
        from the outside (the engine's own counters are not what this bench measures)."""
        latencies: list[float] = []
        await self.warm_up(engine, clients)
        bar = tqdm(total=clients * per_client, desc=f"engine c={clients}", file=sys.stderr, leave=False)

        async def request(i: int) -> None:
            latencies.append(await self.request(engine, i))
            bar.update()

        async def client(c: int) -> None:
            for k in range(per_client):
                await request(c * per_client + k)

        with LagProbe() as probe:
            started = time.perf_counter()
            await asyncio.gather(*(client(c) for c in range(clients)))
            seconds = time.perf_counter() - started
        bar.close()
        result = summary(latencies, seconds)
        result["loop_lag_ms"] = probe.report()
        return result

    async def paired(
        self, engine: Engine, anchor: ctranslate2_anchor.AnchorProcess, pairs: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One client: an engine request, then the same prompt and seed through CTranslate2, in
        turns; each side's summary, the engine's with every pair's latency ratio and their median."""
        await self.warm_up(engine, 1)
        ours: list[float] = []
        theirs: list[float] = []
        shortest = self.plan.tokens
        with LagProbe() as probe:
            for i in tqdm(range(pairs), desc="int8 c=1 pairs", file=sys.stderr, leave=False):
                ours.append(await self.request(engine, i))
                # Off the loop, so the probe sees the engine's effect on it, not this wait.
                seconds, fewest = await asyncio.to_thread(
                    anchor.generate, [self.prompt(i).input_ids], self.plan.tokens, i
                )
                theirs.append(seconds)
                shortest = min(shortest, fewest)
        engine_phase = summary(ours, sum(ours))
        engine_phase["loop_lag_ms"] = probe.report()
        pair_ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        engine_phase["latency_vs_ctranslate2_pairs"] = [round(r, 3) for r in pair_ratios]
        engine_phase["latency_vs_ctranslate2_median"] = round(statistics.median(pair_ratios), 3)
        anchor_result = summary(theirs, sum(theirs))
        anchor_result["fewest_new_tokens"] = shortest
        return engine_phase, anchor_result


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def machine(device: torch.device = CPU) -> dict[str, Any]:
    import transformers

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def ratios(phases: dict[str, dict[str, Any]], plan: Plan) -> dict[str, Any]:
    top, low = max(plan.concurrency), min(plan.concurrency)
    engine_top, engine_low = phases[f"engine_c{top}"], phases[f"engine_c{low}"]
    sequential = phases["sampling_sequential"]
    out = {
        f"engine_c{top}_vs_sequential_sampling": engine_top["tweets_per_s"] / sequential["tweets_per_s"],
        **{
            f"engine_c{size}_vs_bare_batched":
                phases[f"engine_c{size}"]["tweets_per_s"] / phases[f"bare_generate_x{size}"]["tweets_per_s"]
            for size in plan.bare_sizes
        },
        f"engine_c{low}_latency_vs_bare_generate": engine_low["latency_ms"]["mean"] / sequential["latency_ms"]["mean"],
        "max_loop_lag_ms": max(p["loop_lag_ms"]["max"] for k, p in phases.items() if k.startswith("engine")),
    }
    int8_top, int8_low = phases.get(f"engine_int8_c{top}"), phases.get(f"engine_int8_c{low}")
    if int8_top:
        out[f"engine_int8_c{top}_vs_engine_c{top}"] = int8_top["tweets_per_s"] / engine_top["tweets_per_s"]
    anchor_top, anchor_low = phases.get(f"ctranslate2_int8_x{top}"), phases.get(f"ctranslate2_int8_x{low}")
    if int8_top and int8_low and anchor_top and anchor_low:
        out[f"engine_int8_c{top}_vs_ctranslate2_int8_x{top}"] = int8_top["tweets_per_s"] / anchor_top["tweets_per_s"]
        # The median of the pairs' ratios (Bench.paired), not a ratio of means.
        out[f"engine_int8_c{low}_latency_vs_ctranslate2_int8_x{low}"] = int8_low["latency_vs_ctranslate2_median"]
    out = {k: round(v, 3) for k, v in out.items()}
    out["targets_met"] = {
        "throughput_x4.5_sequential": out[f"engine_c{top}_vs_sequential_sampling"] >= 4.5,
        "throughput_90pct_bare_batched": out[f"engine_c{max(plan.bare_sizes)}_vs_bare_batched"] >= 0.9,
        "latency_within_10pct": out[f"engine_c{low}_latency_vs_bare_generate"] <= 1.1,
        "loop_lag_under_50ms": out["max_loop_lag_ms"] < 50,
    }
    if f"engine_int8_c{top}_vs_ctranslate2_int8_x{top}" in out:
        out["targets_met"]["int8_throughput_x1.1_ctranslate2"] = (
            out[f"engine_int8_c{top}_vs_ctranslate2_int8_x{top}"] >= 1.1
        )
        out["targets_met"]["int8_latency_at_most_ctranslate2"] = (
            out[f"engine_int8_c{low}_latency_vs_ctranslate2_int8_x{low}"] <= 1.0
        )
    return out


async def int8_phases(plan: Plan, folder: Path, threads: int) -> dict[str, dict[str, Any]]:
    """The engine on the int8 model at the lowest and highest concurrency, each next to
    CTranslate2 int8 at the same batch size (when installed)."""
    spec = ModelSpec(path=str(folder), kind="controlled", device="cpu", quantize="int8")
    registry = ModelRegistry({"bench_int8": spec}, threads=threads)
    bench = Bench(registry.get("bench_int8"), plan)
    anchor = ctranslate2_anchor.AnchorProcess(folder, threads or torch.get_num_threads()) if ctranslate2_anchor.available() else None
    low, top = min(plan.concurrency), max(plan.concurrency)
    phases: dict[str, dict[str, Any]] = {}
    engine = Engine(registry, EngineSettings(max_batch=top, queue_size=4 * top, request_timeout_s=3600))
    try:
        # Back to back with its reference: the engine and CTranslate2 in turns at one request;
        # CTranslate2's full batches, then the engine under `top` clients.
        if anchor is None:
            phases[f"engine_int8_c{low}"] = await bench.engine(engine, low, plan.requests_per_client[low])
        else:
            phases[f"engine_int8_c{low}"], phases[f"ctranslate2_int8_x{low}"] = await bench.paired(
                engine, anchor, plan.int8_pairs
            )
            phases[f"ctranslate2_int8_x{top}"] = anchor_phase(
                anchor, bench, [list(range(b * top, (b + 1) * top)) for b in range(plan.anchor_batches)]
            )
        phases[f"engine_int8_c{top}"] = await bench.engine(engine, top, plan.requests_per_client[top])
    finally:
        await engine.aclose()
        if anchor is not None:
            anchor.close()
    return phases


def anchor_phase(anchor: ctranslate2_anchor.AnchorProcess, bench: Bench, batches: list[list[int]]) -> dict[str, Any]:
    """CTranslate2 over ``batches`` of prompt indices; the report says if any tweet fell short."""
    latencies: list[float] = []
    total, shortest = 0.0, bench.plan.tokens
    for seed, batch in enumerate(batches):
        seconds, fewest = anchor.generate([bench.prompt(i).input_ids for i in batch], bench.plan.tokens, seed)
        latencies.extend([seconds] * len(batch))
        total, shortest = total + seconds, min(shortest, fewest)
    result = summary(latencies, total)
    result["fewest_new_tokens"] = shortest
    return result


async def run(plan: Plan, folder: Path, threads: int = 0, device: torch.device = CPU,
              tuit_settings: GenerationSettings | None = None) -> dict[str, Any]:
    """Every phase on ``device``; the int8 ones only on the CPU; ``tuit`` when given its setup."""
    started = time.perf_counter()
    # Torch work off the main thread, on threads that end with it (registry.on_own_thread): a
    # thread that lives on with an OpenMP team would slow every engine phase after it.
    on_own_thread(lambda: build_model(folder, plan))
    spec = ModelSpec(path=str(folder), kind="controlled", device=device.type)
    registry = ModelRegistry({"bench": spec}, threads=threads)
    lm = registry.get("bench")
    bench = Bench(lm, plan)
    params = sum(p.numel() for p in lm.model.parameters())
    phases: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    env = machine(device)
    phases["thesis_beams_sequential"] = on_own_thread(lambda: bench.sequential(
        "thesis 10 beams", plan.thesis_requests, do_sample=True, num_beams=10, temperature=0.9,
        top_p=0.9, no_repeat_ngram_size=2,
    ))
    phases["sampling_sequential"] = on_own_thread(lambda: bench.sequential(
        "sampling", plan.sequential_requests, do_sample=True, temperature=0.9, top_p=0.9
    ))
    top = max(plan.concurrency)
    # Phases compared with each other run back to back, so a change in the machine's load
    # between them skews their ratio as little as it can.
    with LagProbe() as idle:  # the machine's own scheduling noise, with no work in this process
        await asyncio.sleep(plan.idle_probe_s)
    engine = Engine(registry, EngineSettings(max_batch=top, queue_size=4 * top, request_timeout_s=3600))
    try:
        for clients in plan.concurrency:
            phases[f"engine_c{clients}"] = await bench.engine(engine, clients, plan.requests_per_client[clients])
    finally:
        await engine.aclose()
    for size in plan.bare_sizes:
        phases[f"bare_generate_x{size}"] = on_own_thread(lambda size=size: bench.batched(size, plan.bare_batches))
    if device.type == "cpu":
        phases.update(await int8_phases(plan, folder, threads))
    else:
        skipped["int8"] = "int8 and CTranslate2 run on the CPU only: politico bench --device cpu"
    if tuit_settings is not None:
        phases["tuit"] = await tuit.phase(tuit_settings, plan.tuit_requests)
    env["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    env["loop_lag_idle_ms"] = idle.report()
    return {
        "command": "politico bench" + (" --quick" if plan is QUICK else "")
        + (f" --threads {threads}" if threads else "") + (f" --device {device.type}" if device.type != "cpu" else ""),
        "machine": env,
        "model": {"parameters": params, "layers": plan.layers, "width": plan.width, "vocab": plan.vocab,
                  "device": str(lm.device), "dtype": str(lm.dtype).removeprefix("torch.")},
        "ctranslate2": _version("ctranslate2") if ctranslate2_anchor.available() else "not installed",
        "new_tokens_per_tweet": plan.tokens,
        "phases": phases,
        "skipped": skipped,
        "ratios": ratios(phases, plan),
        "wall_s": round(time.perf_counter() - started, 1),
    }


BenchRun = Callable[[Plan, Path, int], Awaitable[dict[str, Any]]]


def bench_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick``, ``--out``, ``--threads``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help="tiny model, few requests (smoke test)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch CPU threads per process (0: torch's default); 1 is steadier on a busy machine",
    )
    return parser


def emit(report: dict[str, Any], out: Path | None) -> None:
    """The report as JSON on stdout, and in ``out`` when given."""
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")


def run_cli(prog: str, description: str, bench: BenchRun, argv: list[str] | None) -> int:
    """A benchmark with only the common options; JSON on stdout."""
    args = bench_parser(prog, description).parse_args(argv)
    plan = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="politico-bench-") as tmp:
        report = asyncio.run(bench(plan, Path(tmp), args.threads))
    emit(report, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("politico bench", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", choices=("cpu", "cuda", "auto"), default="cpu",
        help="where every phase runs (default cpu, comparable with the recorded runs; auto: CUDA if present)",
    )
    parser.add_argument("--demo", type=Path, metavar="PATH",
                        help="the model of the tuit phase (default: the config's default model)")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    try:
        demo = tuit.settings(args.config, args.demo, device, args.threads)
    except ConfigError as exc:
        parser.error(str(exc))
    plan = plan_for(args.quick, device)
    with tempfile.TemporaryDirectory(prefix="politico-bench-") as tmp:
        report = asyncio.run(run(plan, Path(tmp), args.threads, device, demo))
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
