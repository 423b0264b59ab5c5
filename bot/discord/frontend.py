"""The Discord bot: slash commands and buttons (discord.py) that hand everything to the core.

``/tuit`` takes structured options (lado, coalicion, partido, sentimiento, tema, hashtags,
frases) read by ``core.tuit_options``, or free text (``texto``) read like a typed command;
``/otra``, ``/ayuda`` and ``/opciones`` mirror Telegram, and ``/comando`` passes any other
command (the review commands) to ``core.handle``. Every command is deferred at once ("thinking",
the placeholder a tweet goes into) and answered by editing that response, or with a follow-up;
errors are ephemeral. Buttons under tweets carry the core's callback data as their
``custom_id`` and go to ``core.press``. Only the (unprivileged) guilds intent is used:
interactions arrive without any. The interaction token kept in the log lets the process that
takes a request over (after a crash, a restart) edit the same response while Discord still
accepts it (15 minutes): an edit repeated shows one tweet.

No ``from __future__ import annotations`` here: discord.py reads the command callbacks'
annotations to build the slash-command options.
"""

import asyncio
import io
import logging
from collections.abc import Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import discord
import yarl
from discord import app_commands

from bot.config import DiscordSettings
from bot.discord.limits import BUTTON_LABEL, CHOICE_NAME, CHOICES, CONTENT, CUSTOM_ID, chunks, fit
from bot.resume import Resumer
from bot.texts import SENTIMENT_NAMES
from bot.types import FICTION_LABEL, Incoming, MessageRef, Origin, Reply

if TYPE_CHECKING:
    from bot.app import App
    from db.log import LoggedRequest

log = logging.getLogger(__name__)

PLATFORM = "discord"
Render = Literal["text", "card", "both"]
FAILURE = "😕 Algo salió mal al responder. Inténtalo de nuevo en un momento."
UNKNOWN_COMMAND = "No conozco ese comando (o esa opción). Prueba /ayuda."
#: Discord accepts follow-ups on an interaction token for 15 minutes; keep a margin.
TOKEN_LIFETIME_S = 14 * 60
#: A button press answered this fast is answered in place, else deferred first.
BUTTON_QUICK_S = 2.0
STOP_GRACE_S = 10.0
NAME_CHARS = 128
#: The interaction's own (deferred) response, which a tweet is edited into.
ORIGINAL = "@original"


class DiscordFrontend:
    """One bot account on the shared app; ``start`` and ``stop`` it from the runner."""

    #: What ``/health`` calls it, as the metrics label it.
    platform = PLATFORM

    def __init__(
        self, app: "App", settings: DiscordSettings, *, render: Render = "text",
        resume_max_age_s: float = 600.0,
    ) -> None:
        self.app = app
        self.core = app.core
        self.settings = settings
        self.render = render
        self.resume_max_age_s = min(resume_max_age_s, TOKEN_LIFETIME_S)
        client_class = discord.AutoShardedClient if settings.sharded else discord.Client
        self.client = client_class(intents=discord.Intents(guilds=True))
        self.tree = app_commands.CommandTree(self.client)
        self.tree.on_error = self._on_command_error  # type: ignore[method-assign]
        self.client.on_interaction = self._on_interaction  # type: ignore[attr-defined]
        self._add_commands()
        app.core.register_editor(PLATFORM, self.edit)
        self._runner: asyncio.Task[None] | None = None
        self._resumer: Resumer | None = None
        #: Interaction id → its deferral, started once (by the handler or the placeholder).
        self._deferrals: dict[int, asyncio.Task[bool]] = {}
        #: The handlers answering an interaction now; ``stop`` lets them finish.
        self._in_hand: set[asyncio.Task[Any]] = set()

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Log in, sync the slash commands (one guild or globally), connect to the gateway."""
        if self.settings.api_base:
            # discord.py keeps its endpoints on classes; a self-hosted/fake API replaces them.
            discord.http.Route.BASE = self.settings.api_base.rstrip("/")
        await self.client.login(self.settings.token)
        if self.settings.api_base:
            _, gateway, _ = await self.client.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        if self.settings.guild_id:
            guild = discord.Object(id=self.settings.guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        self._runner = asyncio.create_task(self._stay_connected(), name="discord-gateway")
        self._resumer = Resumer(
            self.core, PLATFORM, self.resume_max_age_s, self._answer_logged,
            answerable=lambda request: _webhook_of(request) is not None,
            origin_of=lambda request: replace(self.core.origin_of(request), placeholder=_original),
        )
        self._resumer.start()
        log.info("discord: %s connecting", self.client.user)

    async def _stay_connected(self) -> None:
        """Keep the gateway connection up; discord.py reconnects on network errors itself,
        but a payload it cannot parse ends ``connect`` with that exception."""
        delay = 1.0
        while not self.client.is_closed():
            try:
                await self.client.connect(reconnect=True)
            except Exception:
                if self.client.is_closed():
                    return
                log.exception("discord: gateway connection ended; reconnecting in %.0f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def stop(self) -> None:
        """Let the interactions in hand be answered and their delivery logged (closing the
        client would cut their HTTP calls and the app's database after them), for up to
        ``STOP_GRACE_S``; then close the gateway. What is left unanswered, the next process
        takes over."""
        if self._resumer is not None:
            await self._resumer.stop(STOP_GRACE_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE_S
        while self._in_hand and (left := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._in_hand), timeout=left)
        await self.client.close()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)

    async def _answer_logged(self, request: "LoggedRequest", reply: Reply) -> None:
        found = _webhook_of(request)
        assert found is not None  # only answerable requests are resumed
        await self._send(discord.Webhook.partial(*found, client=self.client), reply)

    # -- commands ----------------------------------------------------------------------------
    def _add_commands(self) -> None:
        catalog = self.core.catalog
        sides = [app_commands.Choice(name=s, value=s) for s in catalog.sides][:CHOICES]
        sentiments = [app_commands.Choice(name=name, value=name) for name in SENTIMENT_NAMES.values()]

        async def tuit(
            interaction: discord.Interaction,
            lado: str | None = None,
            coalicion: str | None = None,
            partido: str | None = None,
            sentimiento: str | None = None,
            tema: str | None = None,
            hashtags: str | None = None,
            frases: str | None = None,
            texto: str | None = None,
            empieza: str | None = None,
        ) -> None:
            origin = self.origin(interaction)
            options = {
                "lado": lado, "coalicion": coalicion, "partido": partido, "sentimiento": sentimiento,
                "tema": tema, "hashtags": hashtags, "frases": frases, "empieza": empieza,
            }
            if texto and texto.strip():
                fields = " ".join(f'{k}="{_unquote(v)}"' for k, v in options.items() if v and v.strip())
                work = self.core.handle(Incoming(origin, f"/tuit {texto} {fields}".strip()))
            else:
                work = self.core.tuit_options(origin, **options)
            await self._answer(interaction, work)

        tuit = app_commands.describe(
            lado="derecha, centro o izquierda", coalicion="Chile Vamos, Nueva Mayoría, Frente Amplio…",
            partido="sigla del partido (IND-RN, PDC, …)", sentimiento="el tono del tuit",
            tema="de qué habla (palabras separadas por comas)", hashtags="#hashtags que debe usar",
            frases="una frase que el tuit debería decir",
            texto="todo en una línea, como lo dirías: algo feliz sobre el sename",
            empieza="las primeras palabras del tuit (hasta 80 caracteres)",
        )(tuit)
        tuit = app_commands.choices(lado=sides, sentimiento=sentiments)(tuit)
        tuit = app_commands.autocomplete(coalicion=self._coalitions, partido=self._parties)(tuit)
        self.tree.add_command(app_commands.Command(
            name="tuit", description="Un tuit ficticio de un político chileno que no existe", callback=tuit,
        ))

        async def otra(interaction: discord.Interaction, cambio: str | None = None) -> None:
            origin = self.origin(interaction)
            change = (cambio or "").strip()
            await self._answer(interaction, self.core.follow_up(origin, change) if change else self.core.again(origin))

        otra = app_commands.describe(cambio="qué cambiar del anterior: más enojado, ahora de izquierda, sobre salud")(otra)

        async def ayuda(interaction: discord.Interaction) -> None:
            await self._answer(interaction, self.core.handle(Incoming(self.origin(interaction), "/ayuda")))

        async def opciones(interaction: discord.Interaction) -> None:
            await self._answer(interaction, self.core.handle(Incoming(self.origin(interaction), "/opciones")))

        async def adivina(interaction: discord.Interaction) -> None:
            await self._answer(interaction, self.core.handle(Incoming(self.origin(interaction), "/adivina")))

        async def puntos(interaction: discord.Interaction) -> None:
            await self._answer(interaction, self.core.handle(Incoming(self.origin(interaction), "/puntos")))

        async def comando(interaction: discord.Interaction, texto: str) -> None:
            command = "/" + texto.strip().lstrip("/")
            await self._answer(interaction, self.core.handle(Incoming(self.origin(interaction), command)))

        comando = app_commands.describe(texto="el comando y sus argumentos, p. ej. «revisar»")(comando)
        for name, description, callback in (
            ("otra", "Otro tuit con las mismas opciones que el anterior", otra),
            ("ayuda", "Cómo pedir un tuit", ayuda),
            ("opciones", "Lados, coaliciones, partidos y sentimientos", opciones),
            ("adivina", "¿Real o ficticio? Dos tuits, uno inventado: adivina cuál es real", adivina),
            ("puntos", "Puntos de ¿Real o ficticio? en este canal", puntos),
            ("comando", "Cualquier otro comando del bot (revisión, etc.)", comando),
        ):
            self.tree.add_command(app_commands.Command(name=name, description=description, callback=callback))

    async def _coalitions(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        from bot.catalog import normalize

        typed = normalize(current or "")
        names = [c for c in self.core.catalog.coalitions if typed in normalize(c)]
        return [app_commands.Choice(name=fit(c, CHOICE_NAME), value=c[:CHOICE_NAME]) for c in names][:CHOICES]

    async def _parties(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        from bot.catalog import normalize

        typed = normalize(current or "")
        found = [
            p for p in self.core.catalog.parties.values()
            if typed in normalize(p.key) or typed in normalize(p.name)
        ]
        return [
            app_commands.Choice(name=fit(f"{p.key} · {p.name}", CHOICE_NAME), value=p.key[:CHOICE_NAME])
            for p in found
        ][:CHOICES]

    async def _answer(self, interaction: discord.Interaction, work: Awaitable[Reply]) -> None:
        """Defer at once (Discord waits 3 s), then answer into that response or a follow-up."""
        task = asyncio.ensure_future(work)
        self._hold_current()
        try:
            if not await self._deferred(interaction):
                task.cancel()
                return
            reply = await task
            await self._send(interaction.followup, reply, interaction=interaction)
        finally:
            self._deferrals.pop(interaction.id, None)

    def _hold_current(self) -> None:
        """Count the running handler as in hand until it ends (``stop`` waits for it)."""
        current = asyncio.current_task()
        if current is not None:
            self._in_hand.add(current)
            current.add_done_callback(self._in_hand.discard)

    def _deferred(self, interaction: discord.Interaction) -> asyncio.Task[bool]:
        """The interaction's deferral ("thinking"), started on first need; True once done."""
        task = self._deferrals.get(interaction.id)
        if task is None:
            task = self._deferrals[interaction.id] = asyncio.ensure_future(self._defer(interaction))
        return task

    @staticmethod
    async def _defer(interaction: discord.Interaction) -> bool:
        if interaction.response.is_done():
            return True
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            log.info("discord: could not defer: %s", exc)
            return False
        return True

    # -- buttons and everything else ---------------------------------------------------------
    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component:
            return  # slash commands and autocomplete go through the command tree
        data = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))[:CUSTOM_ID]
        try:
            await self._press(interaction, custom_id)
        except Exception:
            log.exception("discord: button %r failed", custom_id)
            await _quietly(_ephemeral(interaction, FAILURE))

    async def _press(self, interaction: discord.Interaction, custom_id: str) -> None:
        self._hold_current()
        try:
            await self._pressed(interaction, custom_id)
        finally:
            self._deferrals.pop(interaction.id, None)

    async def _pressed(self, interaction: discord.Interaction, custom_id: str) -> None:
        work = asyncio.ensure_future(self.core.press(self.origin(interaction), custom_id))
        done, _ = await asyncio.wait({work}, timeout=BUTTON_QUICK_S)
        if not done:
            await self._deferred(interaction)
        reply = await work
        if reply.kind == "update" and not interaction.response.is_done():
            # The press changes the message it was under (a game round revealed).
            await interaction.response.edit_message(content=fit(reply.text, CONTENT), view=buttons_view(reply))
            return
        if reply.kind == "tweet":
            await self._deferred(interaction)
            await self._send(interaction.followup, reply, interaction=interaction)
        elif not interaction.response.is_done():
            await interaction.response.send_message(fit(reply.text, CONTENT), ephemeral=True)
        else:
            await self._send(interaction.followup, reply, interaction=interaction)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.CommandNotFound | app_commands.TransformerError):
            # A command Discord still lists but this version lacks, or an option value that
            # does not fit its type: the user's input, not our failure.
            log.info("discord: %s", error)
            await _quietly(_ephemeral(interaction, UNKNOWN_COMMAND))
            return
        log.error("discord: command failed", exc_info=error)
        await _quietly(_ephemeral(interaction, FAILURE))

    # -- sending -----------------------------------------------------------------------------
    async def _send(
        self, webhook: discord.Webhook, reply: Reply, *, interaction: discord.Interaction | None = None
    ) -> None:
        """Post ``reply`` through the interaction's webhook: a tweet edited into the deferred
        response (a new follow-up when there is none to edit), errors privately; then the
        delivery of a logged request is reported to the core."""
        if reply.kind == "ignored":  # delivered again: the first delivery is answered
            if interaction is not None:
                await _quietly(interaction.delete_original_response())
            return
        if reply.is_error:
            if interaction is not None:
                # The deferred "thinking" message is public; an error replaces it privately.
                await _quietly(interaction.delete_original_response())
            sent, outcome = await _attempt(webhook.send(fit(reply.text, CONTENT), ephemeral=True, wait=True))
            await self._report(reply, sent, outcome)
            return
        tweet = reply.tweet if reply.kind == "tweet" else None
        if tweet is None:
            parts = chunks(reply.text, CONTENT)
            for part in parts[:-1]:
                await _quietly(webhook.send(part))
            # Buttons go under the last part; a reply that wants to know where it went waits.
            view = buttons_view(reply)
            last, outcome = await _attempt(webhook.send(parts[-1], wait=True, **({"view": view} if view else {})))
            await self._report(reply, last, outcome)
            if reply.on_sent is not None and last is not None:
                await reply.on_sent({
                    "ref": f"{last.channel.id}:{last.id}", "message_id": str(last.id),
                    "application_id": str(webhook.id), "interaction_token": webhook.token or "",
                })
            return
        view = buttons_view(reply)
        content = fit(reply.text, CONTENT)
        file: discord.File | None = None
        if self.render != "text":
            from bot.card import render_card

            png = await asyncio.to_thread(render_card, tweet)
            file = discord.File(io.BytesIO(png), filename="tuit.png")
            content = content if self.render == "both" else FICTION_LABEL
        if (reply.answer_ref or {}).get("ref") == ORIGINAL:
            # An edit: repeated by whoever finishes the delivery after a crash, it shows one tweet.
            message, outcome = await _attempt(webhook.edit_message(
                ORIGINAL, content=content, view=view, **({"attachments": [file]} if file else {}),  # type: ignore[arg-type]
            ))
        else:
            if not await self.core.mark_sending(tweet.generation_id):
                return  # another process began sending it as a new message: not twice
            kwargs: dict[str, Any] = {"view": view} if view is not None else {}
            if file is not None:
                kwargs["file"] = file
            message, outcome = await _attempt(webhook.send(content, wait=True, **kwargs))
        await self._report(reply, message, outcome)

    async def _report(self, reply: Reply, message: discord.Message | None, outcome: str) -> None:
        """Tell the core where the answer of a logged request went: a refusal for good (an
        expired token) counts as delivered, a failure for now leaves it to be done again."""
        if reply.request_id is None and reply.tweet is None:
            return
        if outcome == "failed":
            await self.core.undelivered(reply)
        else:
            ref = f"{message.channel.id}:{message.id}" if message is not None else ""
            await self.core.delivered(reply, ref)

    async def edit(self, where: MessageRef, reply: Reply) -> bool:
        """Replace a message sent as an interaction follow-up (``where``: the application id,
        interaction token and message id; Discord accepts this for 15 minutes)."""
        webhook = discord.Webhook.partial(int(where["application_id"]), where["interaction_token"],
                                          client=self.client)
        edited = await _quietly(webhook.edit_message(
            int(where["message_id"]), content=fit(reply.text, CONTENT), view=buttons_view(reply),
        ))
        return edited is not None

    def origin(self, interaction: discord.Interaction) -> Origin:
        user = interaction.user
        channel_id = interaction.channel_id or user.id
        return Origin(
            platform=PLATFORM,
            user_id=str(user.id),
            chat_id=str(channel_id),
            user_name=(user.display_name or user.name or str(user.id))[:NAME_CHARS],
            chat_kind="guild" if interaction.guild_id else "dm",
            chat_title=(interaction.guild.name if interaction.guild else "")[:NAME_CHARS],
            message_id=str(interaction.id),
            reply_ref={"application_id": str(interaction.application_id), "interaction_token": interaction.token},
            source=str(interaction.id),
            placeholder=lambda: self._placeholder(interaction),
        )

    async def _placeholder(self, interaction: discord.Interaction) -> MessageRef | None:
        """A tweet is coming: the deferred response ("thinking") is what it will be edited into."""
        return {"ref": ORIGINAL} if await self._deferred(interaction) else None


def buttons_view(reply: Reply) -> discord.ui.View | None:
    """The reply's buttons as one row and its choices (another sentiment: Discord cannot take a
    change by reply) as a second; stopped, so discord.py leaves their presses to us."""
    rows = [[b for b in row if len(b.data) <= CUSTOM_ID][:5] for row in (reply.buttons, reply.choices)]
    if not any(rows):
        return None
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(r for r in rows if r):
        for button in row:
            view.add_item(discord.ui.Button(
                label=button.label[:BUTTON_LABEL], custom_id=button.data,
                style=discord.ButtonStyle.secondary, row=number,
            ))
    view.stop()
    return view


async def _original() -> MessageRef:
    """The placeholder of a Discord request taken over: its deferred response, already up."""
    return {"ref": ORIGINAL}


def _webhook_of(request: "LoggedRequest") -> tuple[int, str] | None:
    """The follow-up webhook (application id, interaction token) a logged request can be answered on."""
    app_id = str(request.reply_to.get("application_id", ""))
    token = str(request.reply_to.get("interaction_token", ""))
    return (int(app_id), token) if app_id.isdigit() and token else None


def _unquote(value: str) -> str:
    return value.replace('"', "").replace("“", "").replace("”", "")


async def _ephemeral(interaction: discord.Interaction, text: str) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


async def _attempt(call: Awaitable[Any]) -> tuple[Any, str]:
    """Run a Discord call and say how it went: ``done``; ``refused`` for good (an expired token,
    a deleted message, a 4xx); ``failed`` for now (Discord's 5xx, a time-out, the network)."""
    try:
        return await call, "done"
    except discord.DiscordServerError as exc:
        log.warning("discord call failed: %s", exc)
        return None, "failed"
    except discord.HTTPException as exc:
        log.info("discord refused a call: %s", exc)
        return None, "refused"
    except (TimeoutError, discord.ClientException, OSError) as exc:
        log.warning("discord call failed: %s", exc)
        return None, "failed"


async def _quietly(call: Awaitable[Any]) -> Any:
    """A Discord call whose refusal (expired token, deleted message) must not end the handler."""
    return (await _attempt(call))[0]
