"""The translation catalogs: every text a booker reads (invitation mails, the
RSVP pages, the Google connect flow, the look's own templates -- the places
babel.cfg names) has a translation in every language, and each translation
keeps its placeholders, so a German mail neither crashes nor drops a name.

The texts are extracted here with Babel's API from the sources as they are,
the same extraction `make messages` runs, so a new English text fails this
test until it is translated. Fuzzy and empty entries count as missing: a
fuzzy one is Babel's guess from a similar old text, and gettext would show
the English text anyway."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from gateway.look.i18n import LANGUAGES, LOCALES, translations

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [language for language in LANGUAGES if language != "en"]
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]|%[sdifr]")


def extracted() -> dict[str, list[str]]:
    """Each text babel.cfg's sources ask to translate, with where it is."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str, list[str]] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, []).append(f"{filename}:{line}")
    return found


def catalog(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def forms(value: str | tuple[str, ...] | list[str]) -> list[str]:
    """The one text of a message, or each of its plural forms."""
    return [value] if isinstance(value, str) else list(value)


def test_the_extraction_finds_the_mails_and_the_pages() -> None:
    # Guards the guard: a babel.cfg that matched nothing would make the
    # completeness test below pass with an empty list.
    texts = extracted()
    assert "Invitation: %(title)s @ %(when)s" in texts  # gateway/mail
    assert "all day" in texts  # gateway/look/dates.py
    assert any(where.startswith("gateway/front/") for places in texts.values() for where in places)
    assert any(where.startswith("google_bridge/") for places in texts.values() for where in places)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_a_booker_reads_is_translated(language: str) -> None:
    # A plural entry answers for its singular and its plural text.
    entries = {text: message for message in catalog(language) for text in forms(message.id)}
    missing = []
    for text, places in sorted(extracted().items()):
        entry = entries.get(text)
        if entry is None or entry.fuzzy or not all(forms(entry.string or "")):
            state = "absent" if entry is None else "fuzzy" if entry.fuzzy else "empty"
            missing.append(f"{text!r} ({state}; {places[0]})")
    assert not missing, (
        f"no {language} translation (run `make messages`, then translate in "
        f"{LOCALES.relative_to(ROOT)}/{language}/LC_MESSAGES/messages.po):\n" + "\n".join(missing)
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_placeholders(language: str) -> None:
    wrong = []
    for message in catalog(language):
        if not message.id or not message.string:
            continue
        wanted = sorted(_PLACEHOLDER.findall(forms(message.id)[0]))
        for string in forms(message.string):
            if sorted(_PLACEHOLDER.findall(string)) != wanted:
                wrong.append(f"{message.id!r} -> {string!r}")
                continue
            # Jinja's new-style gettext formats every text, placeholders or
            # not: a lone "%" in a translation would raise on the page.
            try:
                string % dict.fromkeys(wanted, "x")
            except (TypeError, ValueError, KeyError):
                wrong.append(f"{message.id!r} -> {string!r} (not a valid %-format)")
    assert not wrong, "placeholders differ between msgid and msgstr:\n" + "\n".join(wrong)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_catalog_compiles_and_is_used(language: str) -> None:
    # translations() compiles the .po in memory, as the server does.
    translations.cache_clear()
    gettext = translations(language).gettext
    assert gettext("all day") != "all day"
    assert gettext("Invitation: %(title)s @ %(when)s") % {"title": "T", "when": "W"} != (
        "Invitation: T @ W"
    )


def test_a_catalog_for_every_language_and_a_language_for_every_catalog() -> None:
    # The settings' Language literal and the locales directory are the two
    # halves of "add a language" (README, "Languages").
    catalogs = {po.parts[-3] for po in LOCALES.glob("*/LC_MESSAGES/messages.po")}
    assert catalogs == set(TRANSLATED)
