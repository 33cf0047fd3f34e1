"""End-to-end tests against a real Airflow (api-server, scheduler, triggerer) and a real browser."""

from __future__ import annotations
