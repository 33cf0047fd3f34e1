"""`EmulatorConfig`: the emulator's behaviour knobs, the one place each is spelled out.

Each field carries its command-line flag (:class:`CliFlag` in the field's metadata), so the
dataclass drives ``AssemblyAIEmulator(...)``'s keyword arguments, ``emu.configure(...)`` and the
``serve`` command's options alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = ["CliFlag", "EmulatorConfig"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class CliFlag:
    """How a knob appears on the ``serve`` command line.

    :param help: the flag's help text.
    :param parse: turns the flag's text into the value; ``None`` makes it an on/off switch.
    :param name: the flag, if not ``--`` plus the field's name with dashes.
    :param metavar: the value's name in the help.
    """

    help: str
    parse: Callable[[str], Any] | None = None
    name: str | None = None
    metavar: str | None = None


def _knob(default: _T, flag: CliFlag) -> _T:
    value: _T = field(default=default, metadata={"cli": flag})
    return value


def _rate_limit(value: str) -> tuple[int, float]:
    try:
        requests, _, seconds = value.partition("/")
        parsed = (int(requests), float(seconds or "1"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected REQUESTS/SECONDS, e.g. 20000/300") from None
    if parsed[0] < 1 or parsed[1] <= 0:
        raise argparse.ArgumentTypeError("expected positive REQUESTS/SECONDS")
    return parsed


def _days_or_everything(value: str) -> float | None:
    """A number of days; ``0`` lists everything (``None``)."""
    try:
        return float(value) or None
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {value!r}") from None


@dataclass
class EmulatorConfig:
    """Behaviour knobs (see docs/emulator.md); each field's metadata holds its ``serve`` flag."""

    queued_seconds: float = _knob(1.0, CliFlag("time a new transcript stays queued", float))
    processing_seconds: float = _knob(3.0, CliFlag("time it then stays processing", float))
    error_rate: float = _knob(0.0, CliFlag("share of new transcripts ending in error", float))
    allow_delete_in_progress: bool = _knob(False, CliFlag("let queued/processing be deleted"))
    list_retention_days: float | None = _knob(
        90.0, CliFlag("list only this recent (90; 0 = everything)", _days_or_everything)
    )
    latency_ms: float = _knob(0.0, CliFlag("per-request latency in ms", float))
    latency_jitter_ms: float = _knob(0.0, CliFlag("latency jitter (+/- ms)", float))
    rate_limit: tuple[int, float] | None = _knob(
        None, CliFlag("REQUESTS/SECONDS, e.g. 20000/300", _rate_limit)
    )
    seed: int | None = _knob(0, CliFlag("seed of the random generator (0)", int, name="--random-seed"))
    #: The base URL written into the absolute links of list pages (``page_details`` URLs and
    #: ``resource_url``) instead of the emulator's own: what the real API does behind a gateway,
    #: where its links name the API's host (e.g. ``https://api.assemblyai.com``), not the gateway.
    link_base_url: str | None = _knob(
        None,
        CliFlag(
            "write list page links on this host, as the API does behind a gateway "
            "(e.g. https://api.assemblyai.com)",
            str,
            metavar="URL",
        ),
    )

    def __post_init__(self) -> None:
        if self.queued_seconds < 0 or self.processing_seconds < 0:
            raise ValueError("queued_seconds and processing_seconds must be >= 0")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0:
            raise ValueError("latency must be >= 0")
        if self.link_base_url is not None:
            parts = urlsplit(self.link_base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    f"link_base_url must be an http(s) base URL such as https://api.assemblyai.com, "
                    f"got {self.link_base_url!r}"
                )
            self.link_base_url = self.link_base_url.rstrip("/")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one option per knob to ``parser``, defaulting to the knob's default."""
        for knob in fields(cls):
            name, dest, flag = _flag(knob)
            if flag.parse is None:
                parser.add_argument(name, dest=dest, action="store_true", help=flag.help)
            else:
                parser.add_argument(
                    name,
                    dest=dest,
                    type=flag.parse,
                    default=knob.default,
                    metavar=flag.metavar,
                    help=flag.help,
                )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> EmulatorConfig:
        """The configuration given by the options :meth:`add_arguments` added."""
        return cls(**{knob.name: getattr(args, _flag(knob)[1]) for knob in fields(cls)})


def _flag(knob: Field[Any]) -> tuple[str, str, CliFlag]:
    """A knob's flag, its ``argparse`` destination and its :class:`CliFlag`."""
    flag: CliFlag = knob.metadata["cli"]
    name = flag.name or "--" + knob.name.replace("_", "-")
    return name, name[2:].replace("-", "_"), flag
