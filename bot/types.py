"""What front-ends hand the command core and what they get back: plain, platform-neutral data.

Adapters (Telegram, Discord, console) turn platform updates into ``Incoming`` and ``Reply``
into platform messages; they never see models, and the core never sees platform objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

#: Shown with every generated tweet, on every platform; there is no setting to turn it off.
FICTION_LABEL = "🤖 Tuit ficticio · este político no existe"

#: ``ignored``: a message the platform delivered again, already answered or being answered;
#: front-ends send nothing for it. ``update``: a button press's answer that replaces the
#: message the button is under (a game round revealed).
ReplyKind = Literal[
    "tweet", "help", "options", "error", "busy", "rate_limited", "info", "ignored", "update"
]
ButtonAction = Literal[
    "up", "down", "again", "tone", "approve", "reject", "flag", "vote_a", "vote_b", "reveal"
]
#: Where a sent message is, as the front-end that sent it needs it to edit it later (ids as
#: text); ``ref`` is the ``chat:message`` form the log stores.
MessageRef = dict[str, str]
#: A front-end's way to replace a message it sent earlier with a reply (False: it could not).
Editor = Callable[[MessageRef, "Reply"], Awaitable[bool]]


@dataclass(frozen=True)
class Origin:
    """Who sent a command, from where, and how to answer it later (after a restart)."""

    platform: str  # "telegram", "discord", "console"
    user_id: str
    chat_id: str
    user_name: str = ""
    chat_kind: str = "private"  # private / group / supergroup / channel / guild / dm
    chat_title: str = ""
    message_id: str = ""
    #: What a restarted bot needs to answer in place (e.g. a Discord interaction token).
    reply_ref: dict[str, str] = field(default_factory=dict)
    #: The platform's identity of this very message or press (Telegram ``chat_id:message_id``,
    #: a Discord interaction id): the log recognises it when the platform delivers it again.
    source: str = ""
    #: Called once the command is durably logged (or found logged before): Telegram confirms an
    #: update to its server only then, so a crash cannot lose a command it had fetched.
    on_logged: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    #: The message this one replies to, when it replies to one of the bot's (Telegram
    #: ``chat_id:message_id``): a reply to a tweet asks for a follow-up of that tweet.
    replied_ref: str = ""
    #: Puts up the message the answer will later replace ("✍️ escribiendo…", a deferred
    #: response) and says where it is (None: it could not). The core calls it once a tweet is
    #: to be written and logs where it is before the tweet exists, so that whoever delivers the
    #: tweet, after a crash too, edits that one message instead of sending another.
    placeholder: Callable[[], Awaitable[MessageRef | None]] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Incoming:
    """A command as typed (``/tuit derecha positivo pensiones``), with its origin."""

    origin: Origin
    text: str


@dataclass(frozen=True)
class Button:
    """A button under a tweet; ``data`` fits Telegram's 64-byte callback limit."""

    label: str
    action: ButtonAction
    generation_id: int
    #: What the press chooses, for actions that take one (``tone:12:NEGATIVE``).
    value: str = ""

    @property
    def data(self) -> str:
        tail = f":{self.value}" if self.value else ""
        return f"{self.action}:{self.generation_id}{tail}"


@dataclass(frozen=True)
class Tweet:
    """A generated tweet as stored, with what it was asked to be."""

    generation_id: int
    request_id: int
    text: str
    side: str = ""
    coalition: str = ""
    party: str = ""
    sentiment: str = ""
    topic: str = ""
    model: str = ""
    seed: int = 0


@dataclass(frozen=True)
class Reply:
    """The core's answer: ``text`` is complete (label included) and safe as plain text."""

    kind: ReplyKind
    text: str
    tweet: Tweet | None = None
    buttons: tuple[Button, ...] = ()
    #: Changes offered under a tweet (another sentiment), as a second row of buttons where a
    #: platform cannot take them by reply (Discord); Telegram users reply to the tweet instead.
    choices: tuple[Button, ...] = ()
    #: Called by the front-end once the reply is sent, with where it went (a game round keeps
    #: it, to reveal the round in place when its time is up).
    on_sent: Callable[[MessageRef], Awaitable[None]] | None = field(default=None, compare=False, repr=False)
    #: The logged request this answers: the front-end reports its delivery (``core.delivered``).
    request_id: int | None = None
    #: The message put up for this answer (``Origin.placeholder``, or the log's for a request
    #: answered by another process): the front-end edits it rather than sending a new one.
    answer_ref: MessageRef | None = None

    @property
    def is_error(self) -> bool:
        return self.kind in ("error", "busy", "rate_limited")
