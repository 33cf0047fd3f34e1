"""The settings of an AssemblyAI connection (key, region, base URL, timeout, retries) and their checks."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_assemblyai.exceptions import AssemblyAIConfigError, AssemblyAIError
from airflow_provider_assemblyai.get_provider_info import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT_SECONDS,
    REGION_BASE_URLS,
)


@dataclass(frozen=True)
class ConnectionSettings:
    """
    The validated settings of an AssemblyAI connection. The key is kept out of ``repr``.

    :param conn_id: the Airflow connection id.
    :param region: ``us`` or ``eu``.
    :param base_url: the URL every request goes to (the region's, or the ``base_url`` override).
    :param timeout: per-request timeout in seconds.
    :param max_retries: how many times a retryable failure is retried.
    :param api_key: the API key (the connection's password).
    """

    conn_id: str
    region: str
    base_url: str
    timeout: float
    max_retries: int
    api_key: str = field(repr=False)

    @classmethod
    def from_connection(
        cls, conn_id: str, password: str | None, extra: str | dict[str, Any] | None
    ) -> ConnectionSettings:
        """
        Validate a connection's fields, raising AssemblyAIConfigError naming the connection and field.

        :param conn_id: the connection id, for error messages.
        :param password: the API key.
        :param extra: the connection's extra, as stored (a JSON string) or already parsed.
        """
        options = _parse_extra(conn_id, extra)
        if not password or not password.strip():
            raise AssemblyAIConfigError(
                f"Connection {conn_id!r} has no API key: set its password field (labelled 'API Key')"
            )
        region = str(options.get("region") or DEFAULT_REGION).strip().lower()
        if region not in REGION_BASE_URLS:
            raise AssemblyAIConfigError(
                f"Connection {conn_id!r} has unknown region {options.get('region')!r}; "
                f"expected one of {sorted(REGION_BASE_URLS)}"
            )
        base_url = _check_base_url(conn_id, options.get("base_url") or REGION_BASE_URLS[region])
        timeout = _positive_number(conn_id, "timeout", options.get("timeout"), DEFAULT_TIMEOUT_SECONDS)
        max_retries = _non_negative_int(
            conn_id, "max_retries", options.get("max_retries"), DEFAULT_MAX_RETRIES
        )
        return cls(conn_id, region, base_url, timeout, max_retries, password.strip())

    def resolve(self, path_or_url: str) -> str:
        """
        Return the absolute URL for a path, or check that an absolute URL stays on :attr:`base_url`.

        The hook only builds paths (it never follows the API's page links); an absolute URL on
        another scheme, host or port is still refused here, so the key never leaves the base URL.

        :param path_or_url: ``/v2/...``, or an absolute URL.
        """
        if path_or_url.startswith("/"):
            return self.base_url + path_or_url
        own, other = urlsplit(self.base_url), urlsplit(path_or_url)
        if (other.scheme, other.netloc) != (own.scheme, own.netloc) or not other.path.startswith(own.path):
            raise AssemblyAIError(
                f"Refusing to follow a link to {other.scheme}://{other.netloc}{other.path}: it is not on "
                f"the connection's base URL {self.base_url}, and the API key is only sent there"
            )
        return path_or_url


def _parse_extra(conn_id: str, extra: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(extra, dict):
        return extra
    if not extra or not extra.strip():
        return {}
    try:
        parsed = json.loads(extra)
    except ValueError:
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has an extra that is not valid JSON; expected an object such as "
            '{"region": "eu"}'
        ) from None
    if not isinstance(parsed, dict):
        raise AssemblyAIConfigError(f"Connection {conn_id!r} has an extra that is not a JSON object")
    return parsed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(conn_id: str, value: object) -> str:
    url = str(value).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has an invalid base_url {url!r}; expected an https:// URL "
            "such as https://api.assemblyai.com"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has base_url {url!r} over plain http to a non-loopback host; "
            "use https:// (plain http is only accepted for 127.0.0.1, ::1 and localhost)"
        )
    return url


def _positive_number(conn_id: str, name: str, value: object, default: float) -> float:
    if value is None or value == "":
        return float(default)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has {name}={value!r}; expected a positive number of seconds"
        )
    return number


def _non_negative_int(conn_id: str, name: str, value: object, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has {name}={value!r}; expected a whole number >= 0"
        )
    return int(str(value).strip())


def describe(settings: ConnectionSettings) -> str:
    """How errors name a connection: its id and region (never the key)."""
    return f"connection {settings.conn_id!r}, region {settings.region}"
