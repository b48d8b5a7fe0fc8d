"""The look of every HTML page the gateway serves: one base template, one
stylesheet, the business's branding from the settings, and the language a
page is written in.

Front ends (the booker pages, the Google connect flow, the admin console)
render through ``render_page``; their templates extend ``look/base.html``.
``gateway.app`` calls ``setup_look`` once with each front end's templates.
"""

from gateway.look.dates import format_when
from gateway.look.i18n import LANGUAGES, translations
from gateway.look.pages import render_page, setup_look

__all__ = ["LANGUAGES", "format_when", "render_page", "setup_look", "translations"]
