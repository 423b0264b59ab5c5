"""Where completions come from: the in-process engine or remote completions servers."""

from __future__ import annotations

from generation.settings import GenerationSettings
from generation.types import Backend


def build_backend(settings: GenerationSettings) -> Backend:
    """The backend that ``settings.backend`` names (imported lazily: torch only when local)."""
    if settings.backend == "remote":
        from generation.serving.backends.remote import RemoteBackend

        return RemoteBackend(settings)
    from generation.serving.backends.local import LocalBackend

    return LocalBackend(settings)
