"""A client of ClamAV's daemon (``clamd``): its documented INSTREAM command, over a Unix socket
or TCP, in a few lines of asyncio.

The protocol (clamd(8)): send ``zINSTREAM\\0``, then the file in chunks, each a 4-byte
big-endian length and that many bytes, then a zero length; clamd answers one NUL-terminated
line: ``stream: OK``, ``stream: <signature> FOUND``, or ``... ERROR`` (e.g. the stream is
longer than clamd's ``StreamMaxLength``). The ``clamd`` package on PyPI is blocking-only, so
this is ours; it is small enough to read whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass
from pathlib import Path

#: Bytes per INSTREAM chunk (clamd's default StreamMaxLength is far larger than one chunk).
CHUNK_BYTES = 256 * 1024
_END = struct.pack(">I", 0)


class ScanError(Exception):
    """clamd could not be reached, or could not scan the file (its reply says why)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """``clean``, or the signature it found."""

    found: str | None

    @property
    def clean(self) -> bool:
        return self.found is None


def frame(chunk: bytes) -> bytes:
    """One INSTREAM chunk: its length as 4 bytes big-endian, then the bytes."""
    return struct.pack(">I", len(chunk)) + chunk


def parse_reply(reply: bytes) -> Verdict:
    """clamd's answer to INSTREAM; :class:`ScanError` unless it is OK or FOUND."""
    text = reply.rstrip(b"\0\n").decode("utf-8", "replace").strip()
    body = text.split(": ", 1)[1] if ": " in text else text
    if body == "OK":
        return Verdict(None)
    if body.endswith(" FOUND"):
        return Verdict(body.removesuffix(" FOUND").strip() or "unknown")
    raise ScanError(text or "no reply")


class Clamd:
    """``socket``: an absolute path of clamd's LocalSocket, or ``host:port`` of its TCPSocket."""

    def __init__(self, socket: str, *, timeout: float = 120.0) -> None:
        self.socket = socket
        self.timeout = timeout

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket.startswith("/"):
            return await asyncio.open_unix_connection(self.socket)
        host, _, port = self.socket.rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port))

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(5.0):
                reader, writer = await self._connect()
                try:
                    writer.write(b"zPING\0")
                    await writer.drain()
                    return (await reader.readuntil(b"\0")) == b"PONG\0"
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, path: Path) -> None:
        writer.write(b"zINSTREAM\0")
        with await asyncio.to_thread(path.open, "rb") as f:
            while chunk := await asyncio.to_thread(f.read, CHUNK_BYTES):
                writer.write(frame(chunk))
                await writer.drain()
        writer.write(_END)
        await writer.drain()

    async def scan_file(self, path: Path) -> Verdict:
        """Send the file at ``path`` to clamd; its verdict, or :class:`ScanError`."""
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self._connect()
                try:
                    # clamd may stop reading (over its StreamMaxLength) and still say why
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        await self._send(writer, path)
                    reply = await reader.readuntil(b"\0")
                finally:
                    writer.close()
        except TimeoutError:
            raise ScanError("clamd did not answer in time") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise ScanError(f"clamd: {exc}") from None
        return parse_reply(reply)
