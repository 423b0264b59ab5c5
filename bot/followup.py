"""Follow-ups: a new tweet from an earlier one's controls, changed only where the user says.

"más enojado" changes the sentiment, "ahora de izquierda" the side (and drops a party or
coalition that is not of that side, so the core picks one that is), "sobre salud" the topics,
"otra" nothing. The change is read by the same parser as ``/tuit``; here it is laid over the
earlier controls. Pure: the core finds the earlier tweet and logs the new request's parent.
"""

from __future__ import annotations

from dataclasses import replace

from bot.catalog import Catalog
from bot.command import ParsedCommand


def apply_change(earlier: ParsedCommand, change: ParsedCommand, catalog: Catalog) -> ParsedCommand:
    """``earlier``'s controls with what ``change`` says instead (what it does not say stays)."""
    side, coalition, party = _politics(earlier, change, catalog)
    return replace(
        earlier, command="tuit", side=side, coalition=coalition, party=party,
        sentiment=change.sentiment or earlier.sentiment,
        entities=change.entities or earlier.entities,
        hashtags=change.hashtags or earlier.hashtags,
        phrases=change.phrases or earlier.phrases,
        start=change.start or earlier.start,
        corrections=change.corrections, ignored=change.ignored, chosen=(),
    )


def _politics(earlier: ParsedCommand, change: ParsedCommand, catalog: Catalog) -> tuple[str, str, str]:
    """(side, coalition, party) after the change: a named party brings its own; a new side or
    coalition keeps only what still fits it."""
    if change.party:
        return change.side, change.coalition, change.party
    side = change.side or earlier.side
    coalition = change.coalition or earlier.coalition
    if change.coalition and not change.side and side and not catalog.parties_where(side, coalition):
        side = ""
    if change.side and not change.coalition and coalition and not catalog.parties_where(side, coalition):
        coalition = ""
    party = catalog.parties.get(earlier.party)
    fits = party is not None and (not side or party.side == side) and (not coalition or party.coalition == coalition)
    return side, coalition, earlier.party if fits else ""


def asks_for_tweet(change: ParsedCommand) -> bool:
    """Whether a plain reply to a tweet asks for another one, rather than chatting about it.

    It does when it says "otra", names a side, coalition or party, marks a topic ("sobre
    salud"), gives hashtags, a phrase or a start; a sentiment alone counts only when nothing
    else was left unread and nobody laughed ("más enojado" asks, "jajaja qué malo" does not).
    """
    named = bool(change.side or change.coalition or change.party)
    marked = len(change.entities) > len(change.bare_topics)
    given = bool(change.hashtags or change.phrases or change.start)
    chat = bool(change.bare_topics) or change.laughed
    return change.again or named or marked or given or bool(change.sentiment and not chat)
