"""User-facing errors: mistakes a user can fix, printed by the CLI as one line (exit code 2)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LrlabError(Exception):
    """A problem with the user's input; the message names the bad key or value."""


class ConfigError(LrlabError, ValueError):
    """A config document, a schedule spec or a flag is invalid; the message names the field."""


class DataError(LrlabError):
    """A data source is missing, empty or unreadable; the message says what was expected."""


def choices(options: Iterable[str]) -> str:
    """`'a', 'b', 'c'` for error messages."""
    return ", ".join(repr(o) for o in options)


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when one option is close to `name`, else an empty string."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: str, options: Iterable[str]) -> ConfigError:
    """The error for a name that is not one of `options`: names it, suggests, lists the valid ones."""
    opts = list(options)
    return ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, opts)}; valid: {choices(opts)}")
