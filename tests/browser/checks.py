"""What every page must pass in the browser, at every width (issue 15,
"Readable at 390 px wide and at 1280 px, keyboard-usable, labelled for
screen readers, sufficient contrast").

``problems(driver, width, language)`` looks at the page the browser shows
now and returns one sentence per problem (empty: the page passes):

* layout: a viewport meta tag (without one a phone lays the page out 980
  px wide and shrinks it), the page is laid out at the screen's width and
  nothing scrolls sideways (``scrollWidth <= innerWidth``), naming what
  sticks out;
* document: ``<html lang>`` set (to ``language`` when given), a title, one
  ``<h1>``, headings without skipped levels, every image with ``alt``;
* names: every visible input, select, textarea and button has an
  accessible name, as Chromium's accessibility tree computes it (label,
  aria-label, text), not as a guess of ours;
* reading: no word (letters only: addresses and links may break) is
  split across lines, which is what a box or table column too narrow for
  the screen does to its text;
* contrast: text against its background at least 4.5:1 (3:1 for large
  text, WCAG 2.1 1.4.3), backgrounds composited up the tree; text over a
  background image is not judged;
* console: nothing logged as an error since the last check, which is where
  Chromium reports Content-Security-Policy violations (an inline style or
  script, an event handler) and script errors. The page's own document
  answering 4xx is not an error here: error pages are pages, and their
  tests check what they say;
* keyboard: Tab, pressed as a user does, reaches every button, and every
  element it reaches shows where the focus is (an outline or a shadow).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

MIN_CONTRAST = 4.5
MIN_CONTRAST_LARGE = 3.0
MAX_TABS = 120  # bounds the keyboard walk on a page with very many links
_FAVICON_404 = re.compile(r"^https?://[^/]+/favicon\.ico - Failed to load resource: .* 404 ")

_DOCUMENT_JS = """
const root = document.documentElement;
const describe = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (typeof e.className === 'string' && e.className.trim()
       ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
const wide = [...document.querySelectorAll('body *')]
    .filter((e) => e.getClientRects().length
                   && e.getBoundingClientRect().right > arguments[0] + 0.5)
    .slice(0, 5).map(describe);
return {
  viewportMeta: !!document.querySelector('meta[name=viewport][content*="width=device-width"]'),
  lang: root.getAttribute('lang') || '',
  title: document.title.trim(),
  innerWidth: window.innerWidth,
  scrollWidth: root.scrollWidth,
  wide: wide,
  headings: [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((h) => +h.tagName[1]),
  noAlt: [...document.images].filter((i) => !i.hasAttribute('alt')).map((i) => i.src),
};
"""

_CONTRAST_JS = """
const parse = (text) => {
  const m = /^rgba?\\(([^)]*)\\)$/.exec(text.trim());
  if (!m) return null;
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, bottom) => {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
};
const luminance = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = (element) => {
  const layers = [];
  for (let e = element; e; e = e.parentElement) {
    const style = getComputedStyle(e);
    if (style.backgroundImage !== 'none') return null;
    const colour = parse(style.backgroundColor);
    if (colour === null) return null;
    if (colour[3] > 0) layers.push(colour);
    if (colour[3] >= 1) break;
  }
  let result = [255, 255, 255, 1];  // the canvas
  for (const layer of layers.reverse()) result = over(layer, result);
  return result;
};
const found = [];
for (const element of document.querySelectorAll('body *')) {
  const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.data.trim());
  if (!own || !element.getClientRects().length) continue;
  const style = getComputedStyle(element);
  if (style.visibility === 'hidden' || element.closest('[hidden], [aria-hidden=true]')) continue;
  const back = background(element);
  const fore = parse(style.color);
  if (back === null || fore === null) continue;
  const text = over(fore, back);
  const [hi, lo] = [luminance(text), luminance(back)].sort((x, y) => y - x);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && +style.fontWeight >= 700);
  if (ratio < (large ? arguments[1] : arguments[0])) {
    found.push([element.tagName.toLowerCase(), element.textContent.trim().slice(0, 40),
                Math.round(ratio * 100) / 100, style.color, style.backgroundColor]);
  }
}
return found;
"""

_BROKEN_WORDS_JS = """
const found = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (!parent || !parent.getClientRects().length) continue;
  for (const match of node.data.matchAll(/[\\p{L}]{2,}/gu)) {
    const range = document.createRange();
    range.setStart(node, match.index);
    range.setEnd(node, match.index + match[0].length);
    const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    if (lines.size > 1) {
      found.push([parent.tagName.toLowerCase(), match[0]]);
      if (found.length >= 5) return found;
    }
  }
}
return found;
"""

_FOCUSABLE_JS = """
const selector = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]';
const button = 'button, input[type=submit], input[type=button], [role=button]';
// Buttons count even when taken out of the tab order (tabindex=-1): that is the fault.
const all = [...document.querySelectorAll(selector)].filter(
  (e) => e.getClientRects().length && !e.disabled && (e.tabIndex >= 0 || e.matches(button)));
all.forEach((e, i) => { e.dataset.pagecheck = String(i); });
if (document.activeElement) document.activeElement.blur();
return all.map((e) => [
  e.matches(button),
  (e.innerText || e.value || e.getAttribute('aria-label') || e.tagName).trim().slice(0, 40),
]);
"""

_FOCUSED_JS = """
const e = document.activeElement;
if (!e || e.dataset.pagecheck === undefined) return null;
const style = getComputedStyle(e);
const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
return [+e.dataset.pagecheck, outline || style.boxShadow !== 'none'];
"""

_UNMARK_JS = """
document.querySelectorAll('[data-pagecheck]').forEach((e) => { delete e.dataset.pagecheck; });
if (document.activeElement) document.activeElement.blur();
window.getSelection().removeAllRanges();  // Tab into a text field selects its text
"""


def problems(driver: WebDriver, width: int, language: str | None = None) -> list[str]:
    """Every problem of the page shown now (module doc); empty when none."""
    return [
        *_document(driver, width, language),
        *_names(driver),
        *_broken_words(driver),
        *_contrast(driver),
        *_console(driver),
        *_keyboard(driver),
    ]


def _document(driver: WebDriver, width: int, language: str | None) -> list[str]:
    page: dict[str, Any] = driver.execute_script(_DOCUMENT_JS, width)
    found = []
    if not page["viewportMeta"]:
        found.append('no <meta name="viewport" content="width=device-width, initial-scale=1">')
    elif page["innerWidth"] != width or page["scrollWidth"] > page["innerWidth"]:
        # A phone widens the layout to the content (then innerWidth grows);
        # a desktop window scrolls: either way the reader scrolls sideways.
        found.append(
            f"does not fit {width} px: laid out {page['innerWidth']} px wide, content "
            f"{page['scrollWidth']} px; sticking out: {', '.join(page['wide']) or '?'}"
        )
    if not page["lang"]:
        found.append("<html> has no lang attribute")
    elif language is not None and page["lang"] != language:
        found.append(f'<html lang="{page["lang"]}">, expected "{language}"')
    if not page["title"]:
        found.append("the page has no <title>")
    levels: list[int] = page["headings"]
    if levels.count(1) != 1:
        found.append(f"{levels.count(1)} <h1> elements, expected one")
    for before, after in itertools.pairwise(levels):
        if after > before + 1:
            found.append(f"heading level skipped: <h{before}> then <h{after}>")
    found.extend(f"image without alt: {src}" for src in page["noAlt"])
    return found


def _names(driver: WebDriver) -> list[str]:
    found = []
    for element in driver.find_elements(By.CSS_SELECTOR, "input, select, textarea, button"):
        if element.get_attribute("type") == "hidden" or not element.is_displayed():
            continue
        if not element.accessible_name.strip():
            html = (element.get_attribute("outerHTML") or "")[:120]
            found.append(f"control without an accessible name (no label): {html}")
    return found


def _broken_words(driver: WebDriver) -> list[str]:
    broken = driver.execute_script(_BROKEN_WORDS_JS)
    return [
        f"word broken across lines (a column or box too narrow): {word!r} in <{tag}>"
        for tag, word in broken
    ]


def _contrast(driver: WebDriver) -> list[str]:
    low = driver.execute_script(_CONTRAST_JS, MIN_CONTRAST, MIN_CONTRAST_LARGE)
    return [
        f"contrast {ratio}:1 too low for <{tag}> {text!r} ({colour} on {back})"
        for tag, text, ratio, colour, back in low
    ]


def _console(driver: WebDriver) -> list[str]:
    own = driver.current_url.split("#")[0]
    found = []
    for entry in console_log(driver):
        if entry.get("level") != "SEVERE":
            continue
        message = str(entry.get("message", ""))
        if message.startswith(f"{own} - Failed to load resource: the server responded"):
            continue  # an error page's own status (module doc)
        if _FAVICON_404.match(message):
            # Chromium asks every site for /favicon.ico unasked; the gateway
            # has none, and a missing icon is no fault of the page.
            continue
        found.append(f"console error: {message}")
    return found


def console_log(driver: WebDriver) -> list[dict[str, Any]]:
    """The browser console's entries since the last call (reading drops them)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def _keyboard(driver: WebDriver) -> list[str]:
    focusable: list[list[Any]] = driver.execute_script(_FOCUSABLE_JS)
    reached: dict[int, bool] = {}
    presses = min(MAX_TABS, 2 * len(focusable) + 2)  # from anywhere, once round
    for _ in range(presses):
        if len(reached) == len(focusable):
            break
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.execute_script(_FOCUSED_JS)
        if focused is not None:
            index, visible = focused
            reached[index] = reached.get(index, False) or visible
    driver.execute_script(_UNMARK_JS)
    found = []
    for index, (is_button, name) in enumerate(focusable):
        if index not in reached:
            if is_button:
                found.append(f"Tab never reaches the button {name!r}")
        elif not reached[index]:
            found.append(f"no visible focus on {name!r} (outline or box-shadow)")
    return found
