"""
The emulator in its own process, for benchmarks: its CPU is never charged to the side under test.

``python -m bench._emulator`` runs the provider's AssemblyAI emulator behind two small TCP proxies
that count the connections clients open (the emulator does not count them): one plain HTTP, one
terminating TLS with a throwaway self-signed certificate for 127.0.0.1 (the real API is HTTPS-only,
so a client that opens a connection per request also pays a TLS handshake each time). Commands
and answers are JSON lines on stdin/stdout. :class:`EmulatorProcess` drives it.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

API_KEY = "bench-key"
#: Every n-th staggered transcript ends in ``error`` (so failure events are checked too).
ERROR_EVERY = 10


def usage() -> tuple[float, int]:
    """(CPU seconds, peak RSS in KiB) of this process so far, every thread included."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def start_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (Linux) and return the current RSS in KiB.

    Without the reset, ``ru_maxrss`` keeps the peak of the imports, which can hide a smaller run.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return usage()[1]
    return _proc_status_kib("VmRSS") or usage()[1]


def peak_rss() -> int:
    """Peak RSS in KiB since :func:`start_peak_rss` (Linux), else since the process started."""
    return _proc_status_kib("VmHWM") or usage()[1]


def project_root() -> str:
    """The repository root (where ``bench`` and the provider package live)."""
    return str(Path(__file__).resolve().parents[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without Airflow connections, with the repository on PYTHONPATH, plus ``extra``.

    Children cache bytecode in a prefix directory under the temp directory (see below).

    :param extra: variables to add.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    # Bytecode is cached as in any real deployment, but outside the venv and the repository: this
    # machine sets PYTHONDONTWRITEBYTECODE, so every import would otherwise compile from source.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir(), "assemblyai-bench-pycache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root(), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class Protocol:
    """JSON lines on the original stdout; anything else printed (logs) goes to stderr."""

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def reply(self, message: dict[str, Any]) -> None:
        """Send one message.

        :param message: a JSON-serialisable dict.
        """
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()


# --------------------------------------------------------------------------- inside the process


class _CountingProxy:
    """A TCP proxy (optionally terminating TLS) that counts the connections clients open."""

    def __init__(self, upstream_port: int, tls: ssl.SSLContext | None) -> None:
        self.upstream_port = upstream_port
        self.tls = tls
        self.opened = 0
        self.port = 0
        self._ready = threading.Event()

    def start(self) -> None:
        threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True).start()
        if not self._ready.wait(30):
            raise RuntimeError("the counting proxy did not start")

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096, ssl=self.tls)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def write_self_signed(folder: str) -> str:
    """Write a self-signed certificate (and key) for 127.0.0.1 in ``folder``; return its path.

    :param folder: the directory to write ``cert.pem`` and ``key.pem`` to.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(folder, "cert.pem"), Path(folder, "key.pem")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path)


def _create(emu: Any, command: dict[str, Any]) -> dict[str, Any]:
    """Create ``n`` transcripts: completed now, or processing until a staggered moment."""
    n, ids, finals, finish_at = command["n"], [], [], []
    low, high = command.get("finish_min"), command.get("finish_max")
    for i in range(n):
        if low is None:
            ids.append(emu.create_transcript("us", status="completed"))
            finals.append("completed")
            finish_at.append(time.time())
            continue
        final = "error" if (i + 1) % ERROR_EVERY == 0 else "completed"
        completes_in = low + (high - low) * i / max(n - 1, 1)
        ids.append(
            emu.create_transcript("us", status="processing", completes_in=completes_in, final_status=final)
        )
        finals.append(final)
        finish_at.append(time.time() + completes_in)
    return {"ids": ids, "finals": finals, "finish_at": finish_at}


def serve(cert_folder: str) -> None:
    """Run the emulator and both proxies; answer commands until stdin closes.

    :param cert_folder: where to write the self-signed certificate.
    """
    from airflow_provider_assemblyai.testing import AssemblyAIEmulator

    protocol = Protocol()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(Path(cert_folder, "cert.pem"), Path(cert_folder, "key.pem"))
    with AssemblyAIEmulator(api_keys=(API_KEY,)) as emu:
        proxies = {"http": _CountingProxy(emu.port("us"), None), "https": _CountingProxy(emu.port("us"), tls)}
        for proxy in proxies.values():
            proxy.start()
        protocol.reply(
            {
                "direct_url": emu.base_url("us"),
                "urls": {scheme: f"{scheme}://127.0.0.1:{p.port}" for scheme, p in proxies.items()},
            }
        )
        for line in sys.stdin:
            command = json.loads(line)
            if command["cmd"] == "create":
                protocol.reply(_create(emu, command))
            elif command["cmd"] == "prepare":  # a fresh state: n seeded transcripts, latency, rate limit
                emu.reset()
                emu.set_latency(command.get("latency_ms", 0.0))
                emu.set_rate_limit(command.get("rate_limit"), command.get("per_seconds", 1.0))
                span = timedelta(hours=command.get("span_hours", 30 * 24))
                protocol.reply({"ids": emu.seed(command["n"], statuses=command.get("statuses"), span=span)})
            elif command["cmd"] == "requests":  # the request log from index ``since``
                records = emu.requests[command.get("since", 0) :]
                protocol.reply(
                    {"requests": [[r.time.timestamp(), r.method, r.path, r.query, r.status] for r in records]}
                )
            elif command["cmd"] == "stats":
                ids = command.get("ids", [])
                protocol.reply(
                    {
                        "connections": sum(p.opened for p in proxies.values()),
                        "cpu_s": usage()[0],
                        "gets": len(emu.requests_for(method="GET", path="/v2/transcript/")),
                        "lists": sum(
                            1 for r in emu.requests if (r.method, r.path) == ("GET", "/v2/transcript")
                        ),
                        "deletes": len(emu.requests_for(method="DELETE", path="/v2/transcript/")),
                        "not_ok": sum(1 for r in emu.requests if r.status != 200),
                        "requests": len(emu.requests),
                        "rate_limited": emu.rate_limited_count,
                        "deleted": sum(emu.is_deleted("us", tid) for tid in ids),
                    }
                )
            else:
                break


# --------------------------------------------------------------------------- the driver


def stop_by_closing_stdin(proc: subprocess.Popen[Any]) -> None:
    """Stop a child that exits when its stdin closes; kill it if it has not within 30 s."""
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class EmulatorProcess:
    """Start ``python -m bench._emulator`` (without waiting); talk to it; stop it."""

    def __init__(self) -> None:
        self._certs = tempfile.TemporaryDirectory()
        #: The self-signed certificate of the HTTPS proxy: give it to clients as ``SSL_CERT_FILE``
        #: before they import their HTTP library (aiohttp builds its SSL context at import).
        self.cert_path = write_self_signed(self._certs.name)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench._emulator", self._certs.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=project_root(),
            env=child_env({}),
        )
        self._info: dict[str, Any] = {}

    def info(self) -> dict[str, Any]:
        """``direct_url`` and ``urls`` (``http``/``https`` proxies); waits until the process is ready."""
        if not self._info:
            self._info = self._read()
        return self._info

    def call(self, cmd: str, **arguments: Any) -> dict[str, Any]:
        """Send one command (``create``, ``prepare``, ``stats`` or ``requests``) and return its answer.

        :param cmd: the command.
        :param arguments: its arguments.
        """
        self.info()
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"cmd": cmd, **arguments}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator process exited (code {self._proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def url(self, scheme: str | None) -> str:
        """A base URL: through the ``http`` or ``https`` counting proxy, or straight (None).

        :param scheme: ``http``, ``https`` or None.
        """
        info = self.info()
        return str(info["direct_url"] if scheme is None else info["urls"][scheme])

    def connection_json(self, scheme: str | None = None) -> str:
        """The AssemblyAI Airflow connection (JSON) for :meth:`url`.

        :param scheme: ``http``, ``https`` or None (straight to the emulator).
        """
        extra = {"region": "us", "base_url": self.url(scheme)}
        return json.dumps({"conn_type": "assemblyai", "password": API_KEY, "extra": extra})

    def close(self) -> None:
        """Stop the process."""
        stop_by_closing_stdin(self._proc)
        self._certs.cleanup()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


if __name__ == "__main__":
    serve(sys.argv[1])
