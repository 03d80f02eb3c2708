"""Credentials kept out of everything reverie records or says: warehouse rows, summaries, logs, errors, the brief.

A credential reaches reverie in a URL (user:password@, a query key, a token in the path of a service URL) or as an
API key, and comes back in the text of an error (an endpoint echoing the Authorization header in its 401, an HTTP
library naming the URL it called). `redacted` blanks the credentials it is told of, and every credential form it
can recognise without being told: user-info in URLs, Basic and Bearer authorizations, secret-looking query keys.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

BLANK = "***"
LIBPQ_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")  # in libpq settings: password=... or '...'
USER_INFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
BEARER = re.compile(r"(?i)\b(Bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
BASIC = re.compile(r"(?i)\b(Basic)\s+([A-Za-z0-9+/]{4,}={0,2})")
# a query key that names a credential: api-key, token, X-Amz-Signature, X-Amz-Credential, client_secret, sig, ...
QUERY_KEY = re.compile(r"(?i)([?&])([\w.-]*(?:key|token|secret|passw(?:or)?d|signature|sig|credential|auth|code)"
                       r"[\w.-]*=)[^&\s\"'#]+")


def url_secrets(url: str | None, service: bool = False) -> list[str]:
    """The parts of a URL that are, or may be, a credential: its password (with its user, and their Basic encoding)
    and its query values; with `service` (an Apprise URL: slack://TokenA/TokenB/...) its path segments and host too.
    Pieces under 4 characters are left: blanking them would blank ordinary words."""
    if not url:
        return []
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    pieces = [password, *(value for _, value in parse_qsl(parts.query))]
    if password:
        pieces += [f"{user}:{password}", base64.b64encode(f"{user}:{password}".encode()).decode()]
    if service:
        pieces += [url, user, *parts.path.split("/")]
        if parts.scheme not in ("json", "jsons", "form", "forms", "xml", "xmls", "http", "https", "ntfy", "ntfys"):
            pieces.append(parts.hostname or "")  # the "host" of many services is a token
    return [piece for piece in pieces if len(piece) >= 4]


def redacted(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with each of `secrets` and every credential it carries in a recognisable form blanked out."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, BLANK)
    text = USER_INFO.sub(rf"\1{BLANK}@", text)
    text = BEARER.sub(rf"\1 {BLANK}", text)
    text = BASIC.sub(lambda m: f"{m.group(1)} {BLANK}" if _is_basic(m.group(2)) else m.group(0), text)
    return QUERY_KEY.sub(rf"\1\2{BLANK}", text)


def _is_basic(token: str) -> bool:
    """Whether a word after "Basic" is a Basic authorization (base64 of user:password), not a word of a sentence."""
    try:
        return b":" in base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except ValueError:
        return False


def redacted_all(value, secrets: Iterable[str | None] = ()):
    """Every text in a summary (dicts, lists) redacted."""
    secrets = list(secrets)
    if isinstance(value, str):
        return redacted(value, secrets)
    if isinstance(value, dict):
        return {key: redacted_all(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted_all(item, secrets) for item in value]
    return value


class _WithoutSecrets(logging.Filter):
    """Drops log records that contain a secret."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(secret in message for secret in self.secrets)


@contextmanager
def unlogged(secrets: Iterable[str | None], loggers: tuple[str, ...]) -> Iterator[None]:
    """HTTP libraries log requests' URLs (httpx at INFO, urllib3 and Apprise at DEBUG): with a logger set that low, a
    URL's credential would reach the logs, so records holding one are dropped while the block runs."""
    quiet = _WithoutSecrets([secret for secret in secrets if secret])
    for name in loggers:
        logging.getLogger(name).addFilter(quiet)
    try:
        yield
    finally:
        for name in loggers:
            logging.getLogger(name).removeFilter(quiet)
