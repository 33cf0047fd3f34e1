"""Start/stop, ports, threads, connection helpers."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.testing.helpers import KEY, tr_url


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_clean_shutdown_frees_threads_and_ports() -> None:
    baseline = threading.active_count()
    emu = AssemblyAIEmulator(api_keys=(KEY,))
    with emu:
        ports = [emu.port("us"), emu.port("eu")]
        assert ports[0] != ports[1]
        assert emu.base_url("us") == f"http://127.0.0.1:{ports[0]}"
        assert threading.active_count() == baseline + 1
        assert not any(_port_is_free(p) for p in ports)
        with httpx.Client(headers={"Authorization": KEY}) as client:  # leave keep-alive connections open
            assert client.get(tr_url(emu, "us")).status_code == 200
            assert client.get(tr_url(emu, "eu")).status_code == 200
            t0 = time.perf_counter()
            emu.stop()
            assert time.perf_counter() - t0 < 3
    assert not emu.running
    assert threading.active_count() == baseline
    assert all(_port_is_free(p) for p in ports)
    with pytest.raises(httpx.ConnectError):
        httpx.get(tr_url(emu, "us"))
    emu.stop()  # idempotent


def test_explicit_ports_and_restart_on_the_same_ports() -> None:
    with AssemblyAIEmulator(api_keys=(KEY,)) as first:
        us, eu = first.port("us"), first.port("eu")
    with AssemblyAIEmulator(api_keys=(KEY,), port=us, eu_port=eu) as second:
        assert (second.port("us"), second.port("eu")) == (us, eu)
        assert httpx.get(tr_url(second, "eu"), headers={"Authorization": KEY}).status_code == 200


def test_port_in_use_raises() -> None:
    with AssemblyAIEmulator(api_keys=(KEY,)) as first, pytest.raises(OSError, match="in use"):
        AssemblyAIEmulator(api_keys=(KEY,), port=first.port("us")).start()


def test_stop_is_quick_with_a_slow_request_in_flight() -> None:
    emu = AssemblyAIEmulator(api_keys=(KEY,)).start()
    emu.fail_next("slow", delay=600)  # far beyond any bound below, however busy the machine
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(tr_url(emu), headers={"Authorization": KEY}, timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    emu.stop()
    caller.join(60)
    assert time.perf_counter() - t0 < 60  # not the slow request's 600 s
    assert not caller.is_alive()


def test_refuses_non_loopback_hosts_by_default() -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        AssemblyAIEmulator(host="0.0.0.0")
    AssemblyAIEmulator(host="localhost")  # fine, not started


def test_base_url_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        AssemblyAIEmulator().base_url("us")


def test_connection_helpers() -> None:
    with AssemblyAIEmulator(api_keys=("k/1 ?", "other")) as emu:
        conn = json.loads(emu.connection_json("eu"))
        assert conn == {
            "conn_type": "assemblyai",
            "password": "k/1 ?",
            "extra": {"region": "eu", "base_url": emu.base_url("eu")},
        }
        assert json.loads(emu.connection_json("us", api_key="other"))["password"] == "other"
        uri = urlsplit(emu.connection_uri("us"))
        assert uri.scheme == "assemblyai"
        assert unquote(uri.password or "") == "k/1 ?"
        assert parse_qs(uri.query) == {"region": ["us"], "base_url": [emu.base_url("us")]}
        env = emu.connection_env("eu")
        assert list(env) == ["AIRFLOW_CONN_ASSEMBLYAI_DEFAULT"]
        assert json.loads(env["AIRFLOW_CONN_ASSEMBLYAI_DEFAULT"])["extra"]["region"] == "eu"
        # the connection really works against the emulator
        resp = httpx.get(
            conn["extra"]["base_url"] + "/v2/transcript", headers={"Authorization": conn["password"]}
        )
        assert resp.status_code == 200


def test_advance_needs_a_manual_clock() -> None:
    with pytest.raises(TypeError):
        AssemblyAIEmulator().advance(1)


def test_real_clock_lifecycle() -> None:
    emu = AssemblyAIEmulator(api_keys=(KEY,), queued_seconds=0.1, processing_seconds=0.1)
    with emu, httpx.Client(headers={"Authorization": KEY}) as client:
        tid = client.post(tr_url(emu), json={"audio_url": "https://x/a.mp3"}).json()["id"]
        assert client.get(tr_url(emu, "us", tid)).json()["status"] == "queued"
        time.sleep(0.12)
        assert client.get(tr_url(emu, "us", tid)).json()["status"] == "processing"
        time.sleep(0.12)
        assert client.get(tr_url(emu, "us", tid)).json()["status"] == "completed"
