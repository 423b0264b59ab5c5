"""A generated tweet drawn as a PNG that looks like a tweet, and says plainly that it is fiction.

The card shows an invented name and handle (derived from the generation, never a real
person's), an initials avatar, the party/coalition tag, the wrapped text, a date, and a band
with the watermark "Este político no existe · tuit ficticio generado por IA" that no setting
removes. Text is drawn with DejaVu Sans (Debian ``fonts-dejavu-core``); emoji come from Noto
Color Emoji (``fonts-noto-color-emoji``) when installed, else from any installed font that has
the glyph, so a machine without emoji fonts still renders a card (with plain boxes for emoji).
"""

from __future__ import annotations

import functools
import io
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from bot.types import Tweet

WATERMARK = "Este político no existe · tuit ficticio generado por IA"

WIDTH = 1000
PAD = 48
AVATAR = 96
TEXT_SIZE = 40
NAME_SIZE = 34
SMALL_SIZE = 28
LINE_GAP = 14
BAND = 72  # height of the watermark band
BACKGROUND = (255, 255, 255)
INK = (15, 20, 25)
MUTED = (83, 100, 113)
BAND_COLOUR = (29, 35, 42)
BAND_INK = (240, 243, 245)

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
REGULAR = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")
BOLD = ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf")
COLOUR_EMOJI = ("NotoColorEmoji.ttf",)
#: Monochrome fonts tried for characters the main font lacks (symbols, emoji without colour).
FALLBACKS = ("Symbola.ttf", "NotoEmoji-Regular.ttf", "DejaVuSans.ttf", "NotoSansSymbols2-Regular.ttf")
#: Noto Color Emoji is a bitmap font that Pillow can load only at this size; glyphs are scaled.
COLOUR_EMOJI_SIZE = 109

FIRST_NAMES = (
    "Camila", "Javiera", "Constanza", "Francisca", "Valentina", "Catalina", "Fernanda", "Daniela",
    "Rodrigo", "Cristián", "Felipe", "Matías", "Sebastián", "Joaquín", "Gonzalo", "Andrés",
    "Marcela", "Patricio", "Ximena", "Claudio", "Loreto", "Ignacio", "Paulina", "Álvaro",
)
SURNAMES = (
    "Soto", "Contreras", "Silva", "Martínez", "Sepúlveda", "Morales", "Rojas", "Muñoz",
    "Fuentes", "Valenzuela", "Araya", "Espinoza", "Tapia", "Reyes", "Gutiérrez", "Castillo",
    "Pizarro", "Cáceres", "Vergara", "Orellana", "Figueroa", "Henríquez", "Zúñiga", "Aravena",
)
AVATAR_COLOURS = ((29, 155, 240), (0, 186, 124), (249, 24, 128), (255, 122, 0), (120, 86, 255), (212, 40, 40))
MONTHS = ("ene.", "feb.", "mar.", "abr.", "may.", "jun.", "jul.", "ago.", "sept.", "oct.", "nov.", "dic.")


@dataclass(frozen=True)
class Persona:
    """The invented author of a card: the same generation always gets the same one."""

    name: str
    handle: str
    initials: str
    colour: tuple[int, int, int]


def persona_for(tweet: Tweet) -> Persona:
    rng = random.Random(f"{tweet.generation_id}:{tweet.seed}")
    first, last, second = rng.choice(FIRST_NAMES), rng.choice(SURNAMES), rng.choice(SURNAMES)
    bare = _ascii(first + last)
    return Persona(
        name=f"{first} {last} {second}",
        handle=f"@{bare}{rng.randint(10, 99)}",
        initials=f"{first[0]}{last[0]}",
        colour=rng.choice(AVATAR_COLOURS),
    )


def render_card(tweet: Tweet, *, when: datetime | None = None) -> bytes:
    """The tweet as a PNG (bytes)."""
    when = when or datetime.now(UTC)
    persona = persona_for(tweet)
    fonts = _fonts()
    text_width = WIDTH - 2 * PAD
    lines = _wrap(tweet.text.strip() or "…", fonts.text, text_width)
    tag = " · ".join(x for x in (tweet.party, tweet.coalition) if x) or tweet.side
    line_height = TEXT_SIZE + LINE_GAP
    header = AVATAR + 32
    tag_height = SMALL_SIZE + 24 if tag else 0
    body = len(lines) * line_height
    height = PAD + header + tag_height + body + 32 + SMALL_SIZE + PAD + BAND

    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _avatar(draw, persona, fonts)
    x = PAD + AVATAR + 24
    _draw_runs(image, (x, PAD + 8), persona.name, fonts.name, INK)
    _draw_runs(image, (x, PAD + 8 + NAME_SIZE + 10), persona.handle, fonts.small, MUTED)
    y = PAD + header
    if tag:
        _pill(draw, image, (PAD, y), tag, fonts)
        y += tag_height
    for line in lines:
        _draw_runs(image, (PAD, y), line, fonts.text, INK)
        y += line_height
    y += 16
    stamp = f"{when:%H:%M} · {when.day} {MONTHS[when.month - 1]} {when.year} · Este político no existe"
    _draw_runs(image, (PAD, y), stamp, fonts.small, MUTED)
    _watermark(draw, image, height, fonts)

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# -- drawing ---------------------------------------------------------------------------------
def _avatar(draw: ImageDraw.ImageDraw, persona: Persona, fonts: Fonts) -> None:
    box = (PAD, PAD, PAD + AVATAR, PAD + AVATAR)
    draw.ellipse(box, fill=persona.colour)
    centre = (PAD + AVATAR // 2, PAD + AVATAR // 2)
    draw.text(centre, persona.initials, font=fonts.avatar, fill=(255, 255, 255), anchor="mm")


def _pill(draw: ImageDraw.ImageDraw, image: Image.Image, at: tuple[int, int], tag: str, fonts: Fonts) -> None:
    width = min(_width(tag, fonts.small), WIDTH - 2 * PAD - 32)
    x, y = at
    draw.rounded_rectangle((x, y, x + width + 32, y + SMALL_SIZE + 12), radius=18, fill=(232, 245, 253))
    _draw_runs(image, (x + 16, y + 4), tag, fonts.small, (29, 120, 190))


def _watermark(draw: ImageDraw.ImageDraw, image: Image.Image, height: int, fonts: Fonts) -> None:
    top = height - BAND
    draw.rectangle((0, top, WIDTH, height), fill=BAND_COLOUR)
    label = f"🤖 {WATERMARK}"
    x = (WIDTH - _width(label, fonts.small)) // 2
    _draw_runs(image, (max(x, 16), top + (BAND - SMALL_SIZE) // 2 - 2), label, fonts.small, BAND_INK)


# -- text with emoji -------------------------------------------------------------------------
@dataclass(frozen=True)
class Face:
    """A size of the main font plus what draws the characters it lacks."""

    main: ImageFont.FreeTypeFont
    main_cmap: frozenset[int]
    size: int
    fallbacks: tuple[tuple[ImageFont.FreeTypeFont, frozenset[int]], ...]
    colour: ImageFont.FreeTypeFont | None
    colour_cmap: frozenset[int]


@dataclass(frozen=True)
class Fonts:
    text: Face
    name: Face
    small: Face
    avatar: ImageFont.FreeTypeFont | ImageFont.ImageFont


def _runs(text: str, face: Face) -> Iterator[tuple[str, str, ImageFont.FreeTypeFont | None]]:
    """Split ``text`` into ("main" | "fallback" | "colour", chunk, font) runs.

    Emoji variation selectors and joiners stay with the emoji before them.
    """
    kind, font, chunk = "", None, ""
    for char in text:
        code = ord(char)
        if chunk and (code in (0xFE0F, 0x200D) or unicodedata.category(char) == "Mn"):
            chunk += char
            continue
        this_kind, this_font = _pick(code, face)
        if chunk and (this_kind, this_font) != (kind, font):
            yield kind, chunk, font
            chunk = ""
        kind, font = this_kind, this_font
        chunk += char
    if chunk:
        yield kind, chunk, font


def _pick(code: int, face: Face) -> tuple[str, ImageFont.FreeTypeFont | None]:
    is_emoji = code >= 0x1F000 or 0x2600 <= code <= 0x27BF
    if face.colour is not None and code in face.colour_cmap and (is_emoji or code not in face.main_cmap):
        return "colour", face.colour
    if code in face.main_cmap or code < 0x80:
        return "main", face.main
    for font, cmap in face.fallbacks:
        if code in cmap:
            return "fallback", font
    return "main", face.main


def _emoji_width(chunk: str, face: Face) -> int:
    return sum(1 for _ in _graphemes(chunk)) * (face.size + 4)


def _width(text: str, face: Face) -> int:
    total = 0
    for kind, chunk, font in _runs(text, face):
        if kind == "colour":
            total += _emoji_width(chunk, face)
        else:
            total += int((font or face.main).getlength(chunk))
    return total


def _draw_runs(image: Image.Image, at: tuple[int, int], text: str, face: Face, fill: tuple[int, int, int]) -> None:
    draw = ImageDraw.Draw(image)
    x, y = at
    for kind, chunk, font in _runs(text, face):
        if kind == "colour" and font is not None:
            for emoji in _graphemes(chunk):
                glyph = Image.new("RGBA", (COLOUR_EMOJI_SIZE * 2, COLOUR_EMOJI_SIZE * 2), (0, 0, 0, 0))
                ImageDraw.Draw(glyph).text((0, 0), emoji, font=font, embedded_color=True)
                bbox = glyph.getbbox()
                if bbox:
                    glyph = glyph.crop(bbox)
                    scale = face.size / max(glyph.height, 1)
                    glyph = glyph.resize((max(int(glyph.width * scale), 1), face.size), Image.LANCZOS)
                    image.paste(glyph, (int(x), int(y + face.size * 0.12)), glyph)
                    x += max(glyph.width - face.size, 0)
                x += face.size + 4
        else:
            draw.text((x, y), chunk, font=font or face.main, fill=fill)
            x += (font or face.main).getlength(chunk)


def _graphemes(chunk: str) -> Iterator[str]:
    """Emoji with their joiners, skin tones and variation selectors (👍🏽, 🏳️‍🌈, 🇨🇱) as units."""
    current = ""
    for char in chunk:
        joined = current.endswith("\u200d")
        flag_half = len(current) == 1 and _regional(current) and _regional(char)
        attached = ord(char) in (0xFE0F, 0x200D) or 0x1F3FB <= ord(char) <= 0x1F3FF
        if current and not joined and not flag_half and not attached:
            yield current
            current = ""
        current += char
    if current:
        yield current


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _wrap(text: str, face: Face, width: int) -> list[str]:
    """Word-wrap to ``width`` pixels, keeping the text's own line breaks; long words are split."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if _width(candidate, face) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            while _width(word, face) > width:
                cut = _fit_prefix(word, face, width)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _fit_prefix(word: str, face: Face, width: int) -> int:
    cut = 1
    while cut < len(word) and _width(word[: cut + 1], face) <= width:
        cut += 1
    return cut


# -- fonts -----------------------------------------------------------------------------------
def find_font(names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` installed in the usual font folders."""
    for name in names:
        for folder in FONT_DIRS:
            if folder.is_dir():
                found = next(folder.rglob(name), None)
                if found is not None:
                    return found
    return None


@functools.cache
def _cmap(path: Path) -> frozenset[int]:
    with TTFont(path, lazy=True, fontNumber=0) as font:
        return frozenset(font.getBestCmap() or {})


@functools.cache
def _face(size: int, bold: bool) -> Face:
    path = find_font(BOLD if bold else REGULAR)
    if path is None:
        main = ImageFont.load_default(size)
        cmap: frozenset[int] = frozenset(range(0x20, 0x250))
    else:
        main = ImageFont.truetype(str(path), size)
        cmap = _cmap(path)
    fallbacks = tuple(
        (ImageFont.truetype(str(p), size), _cmap(p))
        for p in (find_font((name,)) for name in FALLBACKS)
        if p is not None and p != path
    )
    colour_path = find_font(COLOUR_EMOJI)
    colour = None
    colour_cmap: frozenset[int] = frozenset()
    if colour_path is not None:
        try:
            colour = ImageFont.truetype(str(colour_path), COLOUR_EMOJI_SIZE)
            colour_cmap = _cmap(colour_path)
        except OSError:
            colour = None
    return Face(main, cmap, size, fallbacks, colour, colour_cmap)  # type: ignore[arg-type]


@functools.cache
def _fonts() -> Fonts:
    bold = find_font(BOLD)
    avatar = ImageFont.truetype(str(bold), 40) if bold else ImageFont.load_default(40)
    return Fonts(
        text=_face(TEXT_SIZE, False), name=_face(NAME_SIZE, True), small=_face(SMALL_SIZE, False), avatar=avatar
    )


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())
