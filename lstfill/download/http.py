"""HTTP as the fetcher sees it: URLs and errors named without secrets, and what a server's reply
says (the wait it asks for, where a partial body starts, how long the body is, a short excerpt of
an error body).

Messages and logs name a URL without its query string (which may carry a signature) and never
show headers, auth or cookies; urllib3's own debug lines get the same treatment.
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests
import urllib3.exceptions

import lstfill

_BODY_CHARS = 300
_GUARD_LOCK = threading.Lock()


# --- redaction ---------------------------------------------------------------------------------


def public_url(url: str) -> str:
    """`url` without query string, fragment or ``user:pass@``: safe for messages and logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_QUERY_RE = re.compile(r"\?[^\s'\"<>]+")
_USERINFO_RE = re.compile(r"//[^/\s@'\"]+@")


def _scrub(text: str) -> str:
    """Remove query strings and ``user:pass@`` from any URL or path inside free text."""
    return _USERINFO_RE.sub("//", _QUERY_RE.sub("?[redacted]", text))


def _scrub_secrets(text: str, url: str) -> str:
    """`_scrub` plus every query value of `url` (servers echo signatures in error bodies)."""
    for _, value in parse_qsl(urlsplit(url).query):
        if len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return _scrub(text)


def describe(exc: BaseException) -> str:
    """A short, scrubbed description of a transport error."""
    return f"{type(exc).__name__}: {_scrub(str(exc))}"[:300]


class _RedactQueryFilter(logging.Filter):
    """Scrub query strings from urllib3's debug lines, which show the request path."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _scrub(record.getMessage())
        record.args = None
        return True


_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


def guard_urllib3_logs() -> None:
    """Install the redacting filter on urllib3's request loggers once."""
    with _GUARD_LOCK:
        for name in _URLLIB3_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _RedactQueryFilter) for f in logger.filters):
                logger.addFilter(_RedactQueryFilter())


# --- replies -----------------------------------------------------------------------------------


def user_agent() -> str:
    """The User-Agent every fetcher sends: ``lstfill/<version>``."""
    version = getattr(lstfill, "__version__", None)
    return f"lstfill/{version}" if version else "lstfill"


def _header_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After style value: a number or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if seconds == seconds else None  # NaN guard


def server_wait(response: requests.Response) -> float | None:
    """The wait a 429/503 asks for: Retry-After, else GeoSphere's ``ratelimit-reset``."""
    if response.status_code not in (429, 503):
        return None
    wait = _header_seconds(response.headers.get("Retry-After"))
    if wait is None:
        wait = _header_seconds(response.headers.get("ratelimit-reset"))
    return wait


def is_html(response: requests.Response) -> bool:
    """Whether the reply says it is an HTML page (a login or error page, not data)."""
    return response.headers.get("Content-Type", "").lower().startswith("text/html")


def body_excerpt(response: requests.Response, url: str) -> str:
    """Up to 300 characters of a non-HTML error body (scrubbed), else ""."""
    if is_html(response):
        return ""
    try:
        raw = b""
        for chunk in response.iter_content(1024):
            raw += chunk
            if len(raw) >= 4 * _BODY_CHARS:
                break
    except (requests.RequestException, urllib3.exceptions.HTTPError):
        return ""
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    if text.lower().startswith(("<!doctype html", "<html")):
        return ""
    return _scrub_secrets(text, url)[:_BODY_CHARS]


_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-\d+/(?:\d+|\*)")


def content_range_start(value: str | None) -> int | None:
    """The first byte a ``Content-Range`` value says the body starts at; None if unreadable."""
    match = _CONTENT_RANGE_RE.match(value or "")
    return int(match.group(1)) if match else None


def content_length(response: requests.Response) -> int | None:
    """The body length in bytes as written to disk; None if unknown or content-encoded."""
    if response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        return None
    try:
        length = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None
