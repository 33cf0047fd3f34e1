"""
Where the purge audit's tests write: local files, fsspec's in-memory store, and a real S3 API on
loopback (moto's server, through ObjectStoragePath, the amazon provider's ``aws`` connection with an
``endpoint_url``, and s3fs). The S3 fixtures skip when moto, s3fs or the amazon provider is missing
(they are the ``s3-tests`` extra, installed on the lanes that have them in their constraints).

Import the fixtures into a test module: ``from tests.audit_stores import moto_s3, s3_bucket``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

S3_CONN_ID = "aws_default"


@dataclass(frozen=True)
class MotoS3:
    """moto's S3 server on 127.0.0.1, its endpoint and the ``aws`` connection pointing at it."""

    endpoint: str

    @property
    def connection_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_AWS_DEFAULT`` (dummy keys, the endpoint) and no instance-metadata lookups."""
        connection = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }
        return {
            f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(connection),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A boto3 S3 client on the server (to create buckets and inspect objects directly)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``, straight from the server."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """One moto S3 server on a free 127.0.0.1 port for the whole session."""
    pytest.importorskip("s3fs")
    pytest.importorskip("airflow.providers.amazon")
    server_module = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoS3(endpoint=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the ``aws_default`` connection points at the server. Returns the bucket name."""
    for name, value in moto_s3.connection_env.items():
        monkeypatch.setenv(name, value)
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    moto_s3.client().create_bucket(Bucket=bucket)
    return bucket


def s3_uri(bucket: str, key: str) -> str:
    """An ObjectStoragePath URI for ``key`` in ``bucket`` through the ``aws_default`` connection."""
    return f"s3://{S3_CONN_ID}@{bucket}/{key}"


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh ``memory://`` folder (fsspec's in-memory store, attached to ObjectStoragePath)."""
    from fsspec.implementations.memory import MemoryFileSystem

    try:
        from airflow.sdk.io.store import attach
    except ImportError:  # Airflow 2
        from airflow.io.store import attach  # type: ignore[no-redef]

    fs = MemoryFileSystem()
    attach("memory", fs=fs)
    root = f"/audit-{uuid.uuid4().hex[:12]}"
    yield f"memory://{root}"
    if fs.exists(root):
        fs.rm(root, recursive=True)
