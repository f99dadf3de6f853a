"""Name resolution that never answers costs no invocation its deadline, and the results are still published.

Each invocation runs the real handler in a child process with a mount namespace of its own (`unshare -m`),
where /etc/resolv.conf is bind-mounted over with one naming one or two nameservers that never answer: UDP
sockets on loopback addresses that this test binds and never reads, so no answer and no ICMP error ever
comes back. glibc then waits 5 s per try, twice per nameserver, in a getaddrinfo call nothing can
interrupt. Reply's base URL names a host that must be resolved; moto is reached by IP, so AWS calls work.
The four invocations (1 and 2 nameservers, 20 s and 52 s) run side by side: about 52 s for the file.

Connecting to the address resolved beforehand must not change what the server sees: the last tests check
the Host header, the TLS server name and certificate verification against a local server.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local.stand_ins.aws_stack import (
    function_environment,
    read_results_events,
    receive_batch,
    send_messages,
    sqs_event_from_messages,
)
from sequence_archiver.reply.http_deadline import BoundedResolver, CallWatchdog, watched_pool_manager
from tests.integration.harness import ROOT, details_by_request, outcomes

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

ALLOWED_OVERRUN_SECONDS = 0.3
UNRESOLVABLE_HOST = "reply-simulator.invalid"
# In the namespace: resolv.conf comes from $1, then the handler runs with the spec and output paths.
_IN_NAMESPACE = 'mount --bind "$1" /etc/resolv.conf && exec "$2" -m tests.integration.blackhole_invocation "$3" "$4"'


@dataclass(frozen=True)
class Case:
    nameservers: int
    timeout_seconds: float
    sequence_ids: tuple[int, ...]


CASES = (
    Case(nameservers=1, timeout_seconds=20.0, sequence_ids=(301, 302, 303)),
    Case(nameservers=2, timeout_seconds=20.0, sequence_ids=(311, 312, 313)),
    Case(nameservers=1, timeout_seconds=52.0, sequence_ids=(321, 322, 323)),
    Case(nameservers=2, timeout_seconds=52.0, sequence_ids=(331, 332, 333)),
)


def require_mount_namespaces() -> None:
    """Fail when this machine cannot give a process its own mount namespace; skip, saying why, when not root.

    The black-hole nameservers listen on port 53 (resolv.conf names no port) and the bind mount needs
    CAP_SYS_ADMIN, so the test needs root: CI runs as root; on a laptop, `sudo make test` runs it too."""
    if os.geteuid() != 0:
        pytest.skip("needs root: black-hole nameservers bind port 53 and `unshare -m` bind-mounts resolv.conf")
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("this test needs `unshare` (util-linux) to give the handler its own /etc/resolv.conf")
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(f"`unshare -m true` failed ({probe.stderr.strip()}): this test needs root (CAP_SYS_ADMIN)")


@pytest.fixture
def blackhole_nameservers() -> Iterator[list[socket.socket]]:
    """Two UDP sockets on port 53 of random loopback addresses, bound and never read."""
    sockets: list[socket.socket] = []
    while len(sockets) < 2:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        try:
            sock.bind((address, 53))
        except OSError:  # taken (another test run on this machine): try another address
            sock.close()
            continue
        sockets.append(sock)
    yield sockets
    for sock in sockets:
        sock.close()


def queries_received(sock: socket.socket) -> list[bytes]:
    """The DNS queries that reached a black-hole nameserver (nothing was ever answered)."""
    sock.setblocking(False)
    queries = []
    while True:
        try:
            queries.append(sock.recv(4096))
        except BlockingIOError:
            return queries


def one_event_per_message(stack: LocalStack, bodies: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Bodies sent to the real queue, received as Lambda's poller would, one single-record event each."""
    message_ids = send_messages(stack, bodies)
    by_id = {message["MessageId"]: message for message in receive_batch(stack, max_messages=len(bodies))}
    events = [sqs_event_from_messages([by_id[message_id]], stack.queue_arn, stack.region) for message_id in message_ids]
    return events, message_ids


def start_invocation(
    case: Case, nameservers: list[socket.socket], spec: dict[str, Any], workdir: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """The handler started in a namespace of its own whose resolv.conf names the case's black holes."""
    resolv_conf = workdir / "resolv.conf"
    # glibc's defaults (timeout:5 attempts:2), as on Lambda: the hang lasts 10 s per nameserver and lookup.
    resolv_conf.write_text("".join(f"nameserver {sock.getsockname()[0]}\n" for sock in nameservers[: case.nameservers]))
    spec_path, output_path = workdir / "spec.json", workdir / "output.json"
    spec_path.write_text(json.dumps({**spec, "timeout_seconds": case.timeout_seconds}))
    command = ["unshare", "-m", "sh", "-c", _IN_NAMESPACE, "sh", str(resolv_conf), sys.executable]
    child = subprocess.Popen(
        [*command, str(spec_path), str(output_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return child, output_path


@pytest.mark.slow
@pytest.mark.timeout(240)  # 52 s when it passes, about 70 s when resolution is outside the deadline
def test_black_hole_dns_costs_no_invocation_its_deadline_and_results_are_still_published(
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    blackhole_nameservers: list[socket.socket],
    tmp_path: Path,
) -> None:
    require_mount_namespaces()
    # Given: one request per case, Reply behind a name that must be resolved, and a connect timeout so long
    # that only the invocation's deadline can end the wait for an answer from the black holes.
    port = urlsplit(reply_simulator.base_url).port
    environment = function_environment(
        aws_stack,
        reply_base_url=f"https://{UNRESOLVABLE_HOST}:{port}",
        REPLY_ARCHIVE_MODE="single",
        REPLY_CONNECT_TIMEOUT_SECONDS="120",
    )
    events, message_ids = one_event_per_message(
        aws_stack, [json.dumps({"sequenceIds": list(case.sequence_ids)}) for case in CASES]
    )

    # When: the four invocations run side by side, each in its own namespace.
    started = []
    for index, (case, event) in enumerate(zip(CASES, events, strict=True)):
        workdir = tmp_path / f"case-{index}"
        workdir.mkdir()
        spec = {"environment": environment, "event": event}
        started.append(start_invocation(case, blackhole_nameservers, spec, workdir))
    runs = []
    for child, output_path in started:
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr.decode(errors="replace")
        runs.append(json.loads(output_path.read_text()))

    # Then: every invocation ended in time ...
    for case, run in zip(CASES, runs, strict=True):
        assert run["used"] <= run["had"] + ALLOWED_OVERRUN_SECONDS, (case, run["used"], run["had"])
        assert abs(run["had"] - case.timeout_seconds) < 1.0
    # ... its resolver really was asked, and never answered ...
    assert all(queries_received(sock) for sock in blackhole_nameservers)
    assert reply_simulator.api_calls == 0
    # ... and each request's results were published, no ID claimed archived.
    details = details_by_request(read_results_events(aws_stack, expected=len(CASES)))
    for case, message_id in zip(CASES, message_ids, strict=True):
        assert set(outcomes(details[message_id])) == set(case.sequence_ids)
        assert "archived" not in outcomes(details[message_id]).values()
    for message_id, run in zip(message_ids, runs, strict=True):
        assert run["response"] == {"batchItemFailures": [{"itemIdentifier": message_id}]}  # SQS retries it


NAMED_HOST = "reply-simulator.test"


class _RecordingHandler(BaseHTTPRequestHandler):
    """Answers 200 and records the Host header of each request."""

    hosts: list[str | None]

    def do_GET(self) -> None:
        self.hosts.append(self.headers.get("Host"))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what it needs from `hosts`."""


def certificate_for(host: str, directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate naming `host` only (no IP address), and its key: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "cert.pem", directory / "key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_resolved_within_the_deadline_is_still_the_name_the_server_sees(scheme: str, tmp_path: Path) -> None:
    # Given: a local server, and a resolver whose lookup sends the name to loopback (no real DNS).
    hosts: list[str | None] = []
    server_names: list[str | None] = []
    handler = type("Handler", (_RecordingHandler,), {"hosts": hosts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    certificate: Path | None = None
    if scheme == "https":
        certificate, key = certificate_for(NAMED_HOST, tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        context.sni_callback = lambda _sock, name, _context: server_names.append(name)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    looked_up: list[str] = []

    def to_loopback(host: str, port: int, family: int, kind: int) -> list[Any]:
        looked_up.append(host)
        return socket.getaddrinfo("127.0.0.1", port, family, kind)

    watchdog = CallWatchdog(resolver=BoundedResolver(lookup=to_loopback))
    manager = watched_pool_manager(retries=False, cert_reqs="CERT_REQUIRED", ca_certs=certificate and str(certificate))
    url = f"{scheme}://{NAMED_HOST}:{server.server_address[1]}/v3/sequences/1"
    try:
        # When
        with watchdog.watch(5.0):
            response = manager.request("GET", url)
    finally:
        server.shutdown()
        server.server_close()

    # Then: the address came from the resolver; the request, its TLS name and the verified certificate
    # all still name the host.
    assert response.status == 200
    assert looked_up == [NAMED_HOST]
    assert hosts == [f"{NAMED_HOST}:{server.server_address[1]}"]
    assert server_names == ([NAMED_HOST] if scheme == "https" else [])
