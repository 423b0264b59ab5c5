"""Configuration of models, decoding, the engine and the backend (the ``[generation]`` table)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from generation.types import SamplingParams


class Strict(BaseModel):
    """A config table: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Decoding(Strict):
    """Decoding defaults of a model; a request may override them."""

    max_new_tokens: int = Field(60, ge=1, le=512)
    min_new_tokens: int = Field(0, ge=0, le=512)
    temperature: float = Field(0.9, ge=0.0, le=5.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    min_p: float = Field(0.0, ge=0.0, lt=1.0)
    typical_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, ge=1.0, le=5.0)
    no_repeat_ngram_size: int = Field(0, ge=0, le=10)
    num_beams: int = Field(1, ge=1, le=16)
    banned: list[str] = Field(default_factory=list)
    #: Topic guidance for controlled prompts (generation/decoding/guidance.py); 0 turns it off.
    guide_start_bias: float = Field(0.0, ge=0.0, le=20.0)
    guide_bias: float = Field(0.0, ge=0.0, le=20.0)
    #: Contrast guidance toward the requested side, away from the others (generation/decoding/contrast.py);
    #: 0 turns it off. Each other side adds a row to the batch while decoding.
    contrast_guidance: float = Field(0.0, ge=0.0, le=10.0)

    def params(self, **overrides: object) -> SamplingParams:
        values = self.model_dump()
        values["banned"] = tuple(values["banned"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return SamplingParams(**values)


class ModelSpec(Strict):
    """A named model: where it loads from and how it is prompted."""

    path: str = Field(description="local folder (relative to the config file) or hub id")
    kind: Literal["controlled", "casual"]
    description: str = ""
    #: Casual models: text the tweet starts from after BOS ("" for BOS alone).
    seed_text: str = ""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    #: "int8": int8 weights for the matrix multiplications, on the CPU (generation/decoding/int8.py);
    #: about twice the tweets per second of float32 there.
    quantize: Literal["none", "int8"] = "none"
    #: On a GPU, replay the decoding step as CUDA graphs, per bucket of rows and positions (the
    #: forward: generation/decoding/cudagraph.py; the rules and sampler:
    #: generation/decoding/stepgraph.py); off runs it eagerly, kernel by kernel.
    cuda_graphs: bool = True
    decoding: Decoding = Field(default_factory=Decoding)
    #: Real tweets this model never trained on (JSONL rows of ``politico-train prepare``'s
    #: test split, relative to the config file): the real half of ¿Real o ficticio? rounds.
    real_tweets: str = ""

    @model_validator(mode="after")
    def _int8_runs_on_the_cpu(self) -> ModelSpec:
        if self.quantize == "int8" and self.device in ("cuda", "mps"):
            raise ValueError(
                f"quantize = 'int8' runs on the CPU only, not device = {self.device!r}: "
                "set device = 'cpu' or drop quantize (GPUs run bfloat16/float16 instead)"
            )
        if self.quantize == "int8" and self.dtype not in ("auto", "float32"):
            raise ValueError(f"quantize = 'int8' keeps the rest of the model in float32, not {self.dtype!r}")
        return self


class EngineSettings(Strict):
    """The continuous-batching engine: how many rows decode at once and how much it queues."""

    #: Candidate rows decoding at once (a request's negative lines come on top).
    max_batch: int = Field(32, ge=1, le=1024)
    #: How long an idle engine waits for more requests before its first step.
    batch_window_ms: float = Field(8.0, ge=0, le=1000)
    queue_size: int = Field(256, ge=1)
    request_timeout_s: float = Field(60.0, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)
    #: torch intra-op threads; 0 keeps torch's default (all cores).
    threads: int = Field(0, ge=0)
    warmup: bool = True
    #: Under load, fewer candidates: a request that starts while more than ``shed_rows``
    #: candidate rows are decoding or waiting gets at most ``shed_candidates`` (0: never).
    shed_rows: int = Field(0, ge=0)
    shed_candidates: int = Field(4, ge=1)


class PostprocessSettings(Strict):
    """How a raw continuation becomes a tweet, and when it is thrown away and retried."""

    max_chars: int = Field(280, ge=20, le=4000)
    min_chars: int = Field(12, ge=1)
    max_tries: int = Field(3, ge=1, le=10)
    #: Words or phrases (case- and accent-insensitive) that reject an output.
    blocklist: list[str] = Field(default_factory=list)


class RankingSettings(Strict):
    """How candidates are ranked (``generation/decoding/ranking.py``): the weight of each part."""

    enabled: bool = True
    #: Mean log-probability per token under the requested controls (on the demo model any
    #: weight above 0 chose more copies of training tweets: docs/demo-model.md).
    fit: float = Field(0.0, ge=0)
    #: Log-probability that the requested side (sentiment) wrote it, against the others.
    side: float = Field(2.0, ge=0)
    sentiment: float = Field(0.5, ge=0)
    #: Share of requested topics named.
    topic: float = Field(2.0, ge=0)
    #: Penalty for a tweet that stops mid-sentence.
    open: float = Field(3.0, ge=0)
    #: The reader's judge: log-probability that the tweet is real rather than the model's
    #: (generation/decoding/judge.py; skipped when the model's folder ships no judge.safetensors).
    real: float = Field(0.0, ge=0)
    #: Penalty for a tweet holding a word the judge's vocabulary lacks (a likely invented word).
    unknown: float = Field(0.0, ge=0)
    #: The judge's side head: log-probability a reader places the tweet on the requested side.
    lean: float = Field(0.0, ge=0)
    #: Penalty for a tweet repeating 8 words in a row of a training tweet (the judge's memory).
    copied: float = Field(0.0, ge=0)
    #: Contrast prompts per other side (its parties, most likely first); 0 skips side scoring.
    side_contrasts: int = Field(2, ge=0, le=8)

    @property
    def consults_judge(self) -> bool:
        """Whether a part of the reader's judge counts (else it is neither loaded nor asked)."""
        return self.enabled and (self.real > 0 or self.unknown > 0 or self.lean > 0 or self.copied > 0)


class RemoteSettings(Strict):
    """OpenAI-completions endpoints (``politico serve`` or vLLM) for the remote backend."""

    endpoints: list[HttpUrl] = Field(default_factory=list)
    api_key: str = ""
    timeout_s: float = Field(30.0, gt=0)
    #: Consecutive failures that open an endpoint's circuit, and for how long it stays open.
    failure_threshold: int = Field(3, ge=1)
    cooldown_s: float = Field(15.0, ge=0)
    #: Served model name per configured model ("" means the same name).
    served_names: dict[str, str] = Field(default_factory=dict)


class GenerationSettings(Strict):
    """The ``[generation]`` table."""

    backend: Literal["local", "remote"] = "local"
    default_model: str = "demo"
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    postprocess: PostprocessSettings = Field(default_factory=PostprocessSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)

    @model_validator(mode="after")
    def _default_is_declared(self) -> GenerationSettings:
        if self.models and self.default_model not in self.models:
            raise ValueError(
                f"default_model {self.default_model!r} is not one of the models: {sorted(self.models)}"
            )
        if self.backend == "remote" and not self.remote.endpoints:
            raise ValueError("backend = 'remote' needs at least one entry in remote.endpoints")
        return self
