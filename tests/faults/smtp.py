"""A real (minimal) SMTP server on a loopback port that keeps what it receives, for tests that
put the fault proxy between Keyward and its mail server."""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes
from email.message import Message


class SmtpServer:
    """Keeps each message it accepted (answered 250). With ``stall_at`` set, the message of that
    number is read but never answered until ``release`` is set, then dropped unanswered: a
    server stalling while the sender is killed."""

    def __init__(self, *, stall_at: int | None = None) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._data_seen = 0
        self.stall_at = stall_at
        self.stalled = threading.Event()
        self.release = threading.Event()

    def start(self) -> SmtpServer:
        keeper = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 faults ESMTP")
                while line := self.rfile.readline():
                    command = line.decode("ascii", "replace").strip().upper()
                    if command.startswith(("EHLO", "HELO")):
                        self.reply("250 faults")
                    elif command.startswith(("MAIL FROM", "RCPT TO", "RSET", "NOOP")):
                        self.reply("250 OK")
                    elif command == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(data[1:] if data.startswith(b"..") else data)
                        with keeper._lock:
                            keeper._data_seen += 1
                            stall = keeper._data_seen == keeper.stall_at
                        if stall:
                            keeper.stalled.set()
                            keeper.release.wait(60)
                            return
                        with keeper._lock:
                            keeper.messages.append(message_from_bytes(b"".join(lines)))
                        self.reply("250 OK queued")
                    elif command == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def subjects(self) -> list[str]:
        with self._lock:
            return [message["Subject"] for message in self.messages]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
