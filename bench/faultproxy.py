"""A TCP proxy in front of a real server (PostgreSQL, Redis, SMTP, a webhook receiver) that
plays its faults: down (open connections cut, new ones refused), hung (connections accepted,
nothing answered), slow (every answer held back ``delay`` seconds), and back again."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._accept_thread: threading.Thread | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.port = 0
        self._down = False
        # Seconds each chunk from the server waits before it reaches the client.
        self.delay = 0.0
        # Accept and read, but pass nothing on either way: a server that stopped answering.
        self.hung = False

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        # Polling: a thread blocked in accept() is not woken by closing the socket elsewhere,
        # and the port would keep accepting while "down".
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._down = False
        self._accept_thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accept_thread.start()
        return self

    def go_down(self) -> None:
        """Refuse new connections and drop every open one, as a stopped server does."""
        self._down = True
        if self._accept_thread is not None:
            self._accept_thread.join()
            self._accept_thread = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def come_back(self) -> None:
        """Accept and forward again (on the same port), answering at full speed."""
        self.delay = 0.0
        self.hung = False
        if self._accept_thread is None:
            self.start()

    def hang(self) -> None:
        self.hung = True

    def stop(self) -> None:
        self.go_down()

    def _accept(self, listener: socket.socket) -> None:
        try:
            while not self._down:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                client.setblocking(True)
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._connections += [client, upstream]
                threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        finally:
            listener.close()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select(timeout=1):
                    assert isinstance(key.fileobj, socket.socket)  # registered above
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    if self.hung:
                        continue
                    if self.delay and key.fileobj is upstream:
                        time.sleep(self.delay)
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for end in (client, upstream):
                with contextlib.suppress(OSError):
                    end.close()
