"""A real webhook receiver on a loopback port, and a DNS table for webhook host names.

``Receiver`` is a small threaded http.server that records every request (headers and body) and
answers from a script: a status code, a redirect, a delay, or a trickle of bytes. ``FakeDns``
replaces ``webhooks.addresses.resolve_host`` so tests never ask the network and can make a name
point anywhere, or change what it points to between registration and delivery.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUBLIC_ADDRESS = "93.184.215.14"  # a public address; nothing connects to it in tests


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0  # seconds before answering
    trickle: float = 0.0  # seconds between single bytes of the status line and headers
    location: str = ""


@dataclass
class Receiver:
    """Answers each POST with the next scripted ``Answer`` (then ``default``)."""

    default: Answer = field(default_factory=Answer)
    script: deque = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    got_one: threading.Event = field(default_factory=threading.Event)  # set at each request

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                receiver.got_one.set()
                answer = receiver.script.popleft() if receiver.script else receiver.default
                if answer.delay:
                    receiver.release.wait(answer.delay)
                if answer.trickle:
                    head = f"HTTP/1.1 {answer.status} X\r\nContent-Length: 0\r\n\r\n".encode()
                    for byte in head:
                        if receiver.release.wait(answer.trickle):
                            return
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                self.send_response(answer.status)
                if answer.location:
                    self.send_header("Location", answer.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    def ids(self) -> list[str]:
        return [request.headers["webhook-id"] for request in self.received]

    def wait_for(self, count: int, seconds: float = 5.0) -> None:
        ends = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < ends:
            time.sleep(0.01)


class FakeDns:
    """Host name -> addresses. Names under example.com/.org/.net are public unless set."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {"localhost": ["127.0.0.1", "::1"]}
        self.lookups: list[str] = []

    def __setitem__(self, host: str, addresses: list[str]) -> None:
        self.table[host] = addresses

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host in self.table:
            return list(self.table[host])
        if host.endswith((".example.com", ".example.org", ".example.net")) or host in (
            "example.com",
            "example.org",
        ):
            return [PUBLIC_ADDRESS]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
