"""Sending one delivery: an HTTP POST to an address that was checked, within one deadline.

httpx builds the request and reads the answer; its connections come from httpcore with a
network backend that connects only to the addresses ``addresses.check_url`` approved (the URL's
host still goes in ``Host``, in TLS SNI and in certificate verification), so a DNS answer that
changes between the check and the connection is never used. Every socket operation is given
only the time left, and a watchdog shuts the socket when the deadline passes, so a receiver
that trickles bytes cannot hold a worker longer than the timeout. Redirects are not followed.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import typing
from dataclasses import dataclass
from functools import lru_cache

import httpcore
import httpx

from webhooks.addresses import Destination

USER_AGENT = "Keyward-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code, or the error that stopped it."""

    status_code: int | None
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DeadlinePassed(httpcore.TimeoutException):
    pass


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def left(self, asked: float | None) -> float:
        remaining = self.ends - time.monotonic()
        if remaining <= 0:
            raise DeadlinePassed("timed out")
        return remaining if asked is None else min(asked, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every operation gets at most the time left before the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.left(timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the checked addresses, in order, whatever host the request names."""

    def __init__(self, addresses: tuple[str, ...], deadline: _Deadline) -> None:
        self._addresses = addresses
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()
        self.sockets: list[socket.socket] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception = httpcore.ConnectError("no address to connect to")
        for address in self._addresses:
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=self._deadline.left(timeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
                continue
            raw = stream.get_extra_info("socket")
            if raw is not None:
                self.sockets.append(raw)
            return _DeadlineStream(stream, self._deadline)
        raise last_error

    def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        raise httpcore.ConnectError("webhooks are sent over TCP only")


class _Transport(httpx.BaseTransport):
    """httpx's interface over one httpcore pool (what httpx.HTTPTransport does, with our
    backend, which HTTPTransport does not take)."""

    def __init__(self, pool: httpcore.ConnectionPool) -> None:
        self._pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        response = self._pool.handle_request(core_request)
        stream = response.stream
        if not isinstance(stream, typing.Iterable):
            raise TypeError("a synchronous pool answers with a synchronous stream")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: typing.Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> typing.Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # The certificate is verified against the URL's host name (sent as SNI), not the address.
    return httpx.create_ssl_context(verify=True, trust_env=False)


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, (httpcore.TimeoutException, httpx.TimeoutException)):
        return f"No answer within {timeout:g} seconds."
    if isinstance(error, (httpcore.ConnectError, httpx.ConnectError)):
        detail = str(error) or type(error).__name__
        if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate" in detail.lower():
            return f"TLS certificate not accepted: {detail}"[:300]
        return f"Could not connect: {detail}"[:300]
    if isinstance(error, (httpcore.NetworkError, httpx.NetworkError, OSError)):
        if isinstance(error, OSError) or "Bad file descriptor" in str(error):
            return f"No answer within {timeout:g} seconds."
        return f"Connection failed: {error}"[:300]
    return f"{type(error).__name__}: {error}"[:300]


def post(destination: Destination, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST the body to the destination's checked addresses; never raises for network faults."""
    started = time.monotonic()
    deadline = _Deadline(timeout)
    backend = _PinnedBackend(destination.addresses, deadline)
    pool = httpcore.ConnectionPool(
        ssl_context=_ssl_context(), max_connections=1, retries=0, network_backend=backend
    )
    watchdog = threading.Timer(timeout, _shut, args=(backend,))
    watchdog.daemon = True
    watchdog.start()
    status_code: int | None = None
    error = ""
    try:
        client = httpx.Client(
            transport=_Transport(pool),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would bypass the checks
            timeout=timeout,
        )
        with (
            client,
            client.stream(
                "POST",
                destination.url,
                content=body,
                headers={"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers},
            ) as response,
        ):
            status_code = response.status_code
            if 300 <= status_code < 400:
                location = response.headers.get("location", "")[:200]
                error = f"Redirect to {location or 'elsewhere'} not followed."
            elif not 200 <= status_code < 300:
                error = f"The receiver answered {status_code}."
    except (httpcore.TimeoutException, httpx.TimeoutException) as failure:
        error = _describe(failure, timeout)
    except (httpx.HTTPError, httpcore.ConnectError, httpcore.NetworkError) as failure:
        error = _describe(failure, timeout)
    except (httpcore.ProtocolError, httpx.InvalidURL, httpx.StreamError) as failure:
        error = f"The receiver's answer is not valid HTTP: {failure}"[:300]
    except OSError as failure:
        error = _describe(failure, timeout)
    finally:
        watchdog.cancel()
        if time.monotonic() >= deadline.ends and status_code is None:
            error = f"No answer within {timeout:g} seconds."
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(status_code=status_code, error=error, duration_ms=duration_ms)


def _shut(backend: _PinnedBackend) -> None:
    """The deadline passed: end whatever the connection is blocked on."""
    for raw in backend.sockets:
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)
