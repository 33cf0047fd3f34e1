"""Fault rules: which requests get which broken answer (pure logic, thread-safe)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

__all__ = ["PRE_EFFECT_KINDS", "Fault", "FaultBook", "FaultKind"]

FaultKind = Literal[
    "error",  # 5xx with a JSON error body (default 500)
    "empty",  # 5xx with an empty body (default 503)
    "html",  # 5xx with an HTML proxy page (default 502)
    "rate_limit",  # 429 with Retry-After
    "non_json",  # 200 whose body is not JSON
    "truncated_json",  # the real answer, its JSON body cut short (effect applied)
    "slow",  # the real answer, sent only after `delay` seconds (effect applied)
    "drop",  # connection closed before any response (no effect)
    "drop_after_effect",  # effect applied, then the connection dies mid-body
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
#: Kinds answered before the request reaches the API (no state change happens).
PRE_EFFECT_KINDS: frozenset[str] = frozenset({"error", "empty", "html", "rate_limit", "non_json", "drop"})
_DEFAULT_STATUS: dict[str, int] = {
    "error": 500,
    "empty": 503,
    "html": 502,
    "rate_limit": 429,
    "non_json": 200,
    "truncated_json": 200,
    "slow": 200,
    "drop": 0,
    "drop_after_effect": 200,
}


@dataclass
class Fault:
    """One fault rule.

    ``times`` = how many matching requests it hits (``None`` = unlimited), each hit taken with
    ``probability``. ``method``/``path``(prefix)/``region`` narrow which requests match.
    """

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    region: str | None = None
    times: int | None = 1
    probability: float = 1.0
    status: int | None = None
    delay: float = 5.0
    retry_after: int = 1
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 or None")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.method is not None:
            self.method = self.method.upper()
        if self.status is None:
            self.status = _DEFAULT_STATUS[self.kind]

    def matches(self, region: str, method: str, path: str) -> bool:
        """Whether this rule applies to a request."""
        return (
            (self.method is None or self.method == method.upper())
            and (self.path is None or path.startswith(self.path))
            and (self.region is None or self.region == region)
        )

    @property
    def exhausted(self) -> bool:
        """True once a limited rule has been used up."""
        return self.times is not None and self.hits >= self.times


class FaultBook:
    """An ordered list of fault rules; the first matching live rule fires."""

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._rng = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        """Append a rule (a private copy is stored and returned)."""
        stored = replace(fault, hits=0)
        with self._lock:
            self._rules.append(stored)
        return stored

    def clear(self, seed: int | None = None) -> None:
        """Remove every rule (and optionally reseed the probability source)."""
        with self._lock:
            self._rules.clear()
            if seed is not None:
                self._rng.seed(seed)

    def rules(self) -> list[Fault]:
        """Snapshot copies of the live rules."""
        with self._lock:
            return [replace(r) for r in self._rules]

    def take(self, region: str, method: str, path: str) -> Fault | None:
        """Return (a copy of) the fault to apply to this request, if any, consuming one use."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(region, method, path):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                fired = replace(rule)
                if rule.exhausted:
                    self._rules.remove(rule)
                return fired
        return None
