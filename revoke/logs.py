"""structlog set-up: events with keys, to stderr; JSON for machines, console for people.

A last-line redaction processor masks anything shaped like secret material (PEM blocks, Vault
tokens, AWS secret keys) in case a value ever slips into an event. The console renderer's lines go
to a terminal: every value, and then the rendered line, shows control and bidi characters escaped
(`revoke.textsafe`); the JSON renderer escapes them itself.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from revoke.textsafe import safe

_SECRETISH = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(?:hvs|s|hvb|b)\.[A-Za-z0-9_-]{20,}\b"),
    re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
]


def redact(text: str) -> str:
    for pattern in _SECRETISH:
        text = pattern.sub("<redacted>", text)
    return text


def _redactor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def _terminal_safe(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # each value on one line: a newline in a value cannot forge a log line of its own
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = safe(value)
    return event


class _SafeConsoleRenderer:
    """structlog's console renderer, its output (a traceback included) redacted and shown safely.
    Tracebacks are plain: Rich's would print every frame's local variables, secrets included."""

    def __init__(self) -> None:
        self.inner = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return safe(redact(self.inner(logger, name, event)), newlines=True)


_level = logging.INFO


def enabled(level: str) -> bool:
    """Whether events at `level` are emitted: skip building costly fields for filtered events."""
    return getattr(logging, level.upper(), logging.INFO) >= _level


def configure(fmt: str = "console", level: str = "info") -> None:
    # the Google SDK logs full responses (private keys included) under this variable
    os.environ.pop("GOOGLE_SDK_PYTHON_LOGGING_SCOPE", None)
    global _level
    numeric = getattr(logging, level.upper(), logging.INFO)
    _level = numeric
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else _SafeConsoleRenderer()
    for_people = [] if fmt == "json" else [_terminal_safe]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redactor,
            *for_people,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # provider SDKs and servers log through stdlib logging: keep them quiet unless debugging
    for name in ("botocore", "boto3", "urllib3", "werkzeug", "google", "grpc", "hvac"):
        logging.getLogger(name).setLevel(logging.WARNING if numeric > logging.DEBUG else logging.INFO)
