"""Benchmarks: ``python -m bench`` (full) or ``python -m bench --smoke`` (tiny, checks results are sane)."""

from __future__ import annotations
