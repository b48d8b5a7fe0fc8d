"""Cross-site request forgery, refused twice over on every console POST
(pure functions; ``gateway.front.console.guard`` applies them):

- the form's hidden ``csrf`` field must be the HMAC of the session id under
  the session key: a page of another site cannot read it (same-origin
  policy), so it cannot make a form that carries it. Before sign-in the id
  is that of a short-lived sign-in cookie (login CSRF: another site must
  not sign the admin in as someone else);
- a browser's ``Origin`` header, when sent, must be the server's own origin
  (``gateway.web.origin``)
  (``server.public_url``, as for the booker pages, or the address the
  request was sent to: an admin may open http://localhost:8080/ while the
  settings say 127.0.0.1).

SameSite=Lax on the cookie is a third line the browser draws itself.
"""

from __future__ import annotations

import hashlib
import hmac

FIELD = "csrf"


def token(key: bytes, session_id: str) -> str:
    return hmac.new(key, f"csrf\x00{session_id}".encode(), hashlib.sha256).hexdigest()


def token_ok(key: bytes, session_id: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(token(key, session_id).encode(), given.encode("utf-8", "replace"))
