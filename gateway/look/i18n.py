"""Languages: one gettext catalog per language under ``locales/``
(``locales/<language>/LC_MESSAGES/messages.po``), English being the source.

The ``.po`` files are the only form kept in the repository; they are
compiled in memory when first asked for (Babel), so there is no build step
and no binary ``.mo`` to fall out of step with its source.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import get_args

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from gateway.settings import Language

LOCALES = Path(__file__).resolve().parent / "locales"
LANGUAGES: tuple[Language, ...] = get_args(Language)
DOMAIN = "messages"


def N_(text: str) -> str:
    """Mark ``text`` for the catalogs without translating it here: for texts
    chosen in one place and translated where the language is known (e.g.
    ``gettext(failure.title)`` on a page). ``make messages`` and the
    completeness test find ``N_("...")`` like ``_("...")``; a text built
    with an f-string can be found by neither, so use named placeholders."""
    return text


@cache
def translations(language: Language) -> NullTranslations:
    """The catalog of ``language``; English (the source) translates nothing."""
    po = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == "en" or not po.is_file():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def translate(language: Language, message: str, values: Mapping[str, object] | None = None) -> str:
    """``message`` in ``language``, its named placeholders filled from
    ``values`` after the lookup (the catalog holds the text with
    ``%(name)s``, never a text already filled in)."""
    text = translations(language).gettext(message)
    return text % values if values else text


def translator(language: Language) -> Callable[..., str]:
    """``translate`` bound to ``language``, called like the templates' ``_()``:
    ``_("Hello %(name)s", name=...)``."""

    def _(message: str, **values: object) -> str:
        return translate(language, message, values)

    return _
