"""The ``politico`` command: one entry point whose subcommands live in their own modules.

Subcommands are imported only when run, so ``politico --help`` stays fast (no torch import) and a
front-end whose module or dependency is missing fails with one line instead of a traceback.
Each target is ``function(argv: list[str]) -> int | None`` and parses its own options, reading
the tables of ``config.toml`` its room owns (``generation.config``: the engine and the log
never import the bot); a ``--config PATH`` given before the subcommand is handed on to it, so
both ``politico --config x.toml chat`` and ``politico chat --config x.toml`` work.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from bot.config import Settings, load_settings
from generation.config import ConfigError, add_config_argument

#: Subcommand → ("module:function", one-line help). Owners add their rows here.
COMMANDS: dict[str, tuple[str, str]] = {
    "chat": ("bot.console:main", "conversar con el bot en la terminal (--json: una línea JSON por tuit)"),
    "run": ("bot.runner:main", "iniciar los bots de Telegram y/o Discord"),
    "db": ("db.migrate:main", "base de datos del registro: `politico db upgrade`"),
    "bench": ("generation.measuring.bench:main", "medir el motor de generación"),
    "gpu-check": ("generation.measuring.gpucheck:main", "comprobar el camino CUDA en una GPU, con informe"),
    "crowd": ("bot.crowd:main", "medir cuánto espera una multitud de usuarios por sus tuits"),
    "serve": ("generation.serving.server:main", "servir los modelos como API de completions (OpenAI)"),
    "admin": ("bot.admin.cli:main", "mesa de revisión y tareas de administración"),
}

Target = Callable[[list[str]], "int | None"]


def settings_from(path: str | None) -> Settings:
    """Load the config; a ``ConfigError`` propagates and :func:`main` prints it as one line."""
    return load_settings(path)


def _top_parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in COMMANDS)
    listing = "\n".join(f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="politico",
        usage="politico [--config PATH] COMANDO [opciones]",
        description="Este político no existe: tuits ficticios de políticos chilenos.",
        epilog=f"comandos:\n{listing}\n\n`politico COMANDO --help` explica cada uno.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_config_argument(parser)
    return parser


def _split(argv: list[str]) -> tuple[list[str], str | None, list[str]]:
    """(options before the subcommand, the subcommand, what follows it)."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--config":
            index += 2
        elif token.startswith("-"):
            index += 1
        else:
            return argv[:index], token, argv[index + 1:]
    return argv, None, []


def load_target(spec: str) -> Target:
    """Import ``module:function``; raises ``LookupError`` with a one-line reason when absent."""
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise LookupError(f"falta el módulo {exc.name!r}") from None
    target = getattr(module, function_name, None)
    if not callable(target):
        raise LookupError(f"{module_name} no define {function_name}()")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    head, command, rest = _split(args)
    parser = _top_parser()
    options = parser.parse_args(head)
    if command is None:
        parser.print_help()
        return 2
    if command not in COMMANDS:
        parser.error(f"comando desconocido {command!r}; use uno de: {', '.join(COMMANDS)}")
    if options.config is not None:
        rest = ["--config", options.config, *rest]
    try:
        target = load_target(COMMANDS[command][0])
    except LookupError as exc:
        print(f"politico {command}: no disponible en esta instalación ({exc})", file=sys.stderr)
        return 2
    try:
        code = target(rest)
    except ConfigError as exc:
        print(f"error de configuración: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
