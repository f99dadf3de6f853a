"""HTTP plumbing: a threading server on loopback that hands each request to a dispatch function."""

from __future__ import annotations

import logging
import selectors
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

from local.stand_ins.reply_simulator.identities import USER_EMAIL_HEADER, USER_ID_HEADER
from local.stand_ins.reply_simulator.messages import HttpRequest, HttpResponse, problem_response

if TYPE_CHECKING:
    from collections.abc import Callable

    Dispatch = Callable[[HttpRequest], HttpResponse]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 10 * 1024 * 1024
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _BodyError(Exception):
    """The request body could not be read as declared."""


class SimulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks open connections so stop() can close kept-alive ones."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__(address, _RequestHandler)

    @property
    def stopping(self) -> threading.Event:
        """Set once stop_serving() was called (slow answers stop dripping then)."""
        return self._stopping

    def serve_until_stopped(self) -> None:
        """Accept connections until stop_serving(); unlike serve_forever it never polls, so stop is instant."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ, "listen")
            selector.register(self._wake_reader, selectors.EVENT_READ, "wake")
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.data == "listen" and not self._stopping.is_set():
                        self.handle_request()

    def stop_serving(self) -> None:
        """Make serve_until_stopped() return."""
        self._stopping.set()
        self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        """Close the listening socket and the wake-up pair."""
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then serve it on its own thread."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection and close it."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection so idle keep-alive threads end now."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("connection already closed")

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed connection at DEBUG instead of printing a traceback to stderr."""
        error = sys.exc_info()[1]
        logger.debug("simulator connection failed", extra={"error": repr(error)})


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ReplySimulator/1.0"
    timeout = 60  # idle keep-alive connections end after a minute
    # Headers and body go out in separate writes; with Nagle on, each response waits ~40 ms for an ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        """Serve GET."""
        self._serve()

    def do_POST(self) -> None:
        """Serve POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve PUT."""
        self._serve()

    def do_PATCH(self) -> None:
        """Serve PATCH."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve DELETE."""
        self._serve()

    def do_HEAD(self) -> None:
        """Serve HEAD (headers only)."""
        self._serve()

    def do_OPTIONS(self) -> None:
        """Serve OPTIONS."""
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's access and error lines to DEBUG logging."""
        logger.debug(format, *args)

    def _serve(self) -> None:
        try:
            response = self._response()
            if response.drop_connection:
                self.close_connection = True
                self._shut_connection()
                return
            if response.drip_seconds is not None:
                self._drip(response, response.drip_seconds)
                return
            self._write(response)
        except _CLIENT_GONE:
            logger.debug("client went away mid-request")
            self.close_connection = True

    def version_string(self) -> str:
        """Return the Server header value."""
        return self.server_version

    def _shut_connection(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            logger.debug("client closed the connection first")

    def _response(self) -> HttpResponse:
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            return problem_response(400, str(exc))
        target = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=target.path,
            query=target.query,
            authorization=self.headers.get("Authorization"),
            body=body,
            user_id_header=self.headers.get(USER_ID_HEADER),
            user_email_header=self.headers.get(USER_EMAIL_HEADER),
        )
        try:
            return cast("SimulatorHTTPServer", self.server).dispatch(request)
        except Exception:
            # A simulator bug must show up as a 500 and a log line, not as a dropped connection.
            logger.exception("simulator failed to answer", extra={"method": self.command, "path": target.path})
            return problem_response(500, "The simulator failed to answer this request.")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise _BodyError("Content-Length is not an integer.") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise _BodyError("Content-Length is out of range.")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError("Malformed chunked body.") from None
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError("Request body is too large.")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _drip(self, response: HttpResponse, seconds: float) -> None:
        """Send the answer one byte every `seconds` (a slow-loris server), then close the connection."""
        self.close_connection = True
        self.log_request(response.status)
        lines = [
            self.protocol_version + " " + str(response.status) + " " + self._reason(response.status),
            "Server: " + self.version_string(),
            *(name + ": " + value for name, value in response.headers),
            "Content-Length: " + str(len(response.body)),
            "Connection: close",
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = response.body if self.command != "HEAD" else b""
        if response.drip_from_body:
            self.wfile.write(head)
            self.wfile.flush()
            slow = body
        else:
            slow = head + body
        stopping = cast("SimulatorHTTPServer", self.server).stopping
        for index in range(len(slow)):
            if stopping.wait(seconds):
                return
            self.wfile.write(slow[index : index + 1])
            self.wfile.flush()

    @staticmethod
    def _reason(status: int) -> str:
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return "Status"

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)
        self.wfile.flush()
