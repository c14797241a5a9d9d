"""HTTPS served directly: the server's TLS context, read again on SIGHUP.

The listening socket keeps one :class:`ssl.SSLContext` for its whole life; every new connection
is wrapped with the certificate the context holds at that moment. A reload therefore loads the
new pair into the same context: connections made afterwards get the new certificate, those
already open (WebSockets of a live room) are not touched. A pair that does not load (a
half-written renewal, a key that does not match) is refused and the old one stays in use.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from webinar.config import ConfigError, TlsConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What the logs and `webinar config check` say about a loaded certificate."""

    subject: str
    serial: int
    not_after: datetime


def _read_pair(cert_file: Path, key_file: Path) -> CertificateInfo:
    """Check that the pair loads (blocking: files and key parsing); describe the certificate."""
    for path in (cert_file, key_file):
        try:
            with path.open("rb"):
                pass
        except FileNotFoundError:
            raise ConfigError(f"tls: cannot read {path}: not found") from None
        except OSError as exc:
            raise ConfigError(f"tls: cannot read {path}: {exc.strerror}") from None
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:  # before OSError, of which it is a kind
        raise ConfigError(
            f"tls: {cert_file} and {key_file} are not a matching PEM certificate and key"
            f" ({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"tls: cannot read {cert_file} or {key_file}: {exc}") from None
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        serial=cert.serial_number,
        not_after=cert.not_valid_after_utc,
    )


def check_tls(config: TlsConfig) -> CertificateInfo | None:
    """Load the configured pair once (for `config check` and start-up); None without TLS."""
    if config.cert_file is None or config.key_file is None:
        return None
    return _read_pair(config.cert_file, config.key_file)


class TlsContext:
    """The server's TLS context and its reload."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        self.context = context
        self.info: CertificateInfo | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def create(cls, config: TlsConfig) -> TlsContext:
        assert config.cert_file is not None and config.key_file is not None
        tls = cls(config.cert_file, config.key_file)
        await tls.reload()
        return tls

    async def reload(self) -> CertificateInfo:
        """Load the files again; raises ConfigError (and keeps the old pair) if they are bad."""
        async with self._lock:
            info = await asyncio.to_thread(_read_pair, self.cert_file, self.key_file)
            # The files were just checked; loading them into the live context is quick and
            # must happen on the loop's thread, which creates connections from the context.
            try:
                self.context.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as exc:  # replaced between the check and the load
                raise ConfigError(f"tls: the certificate changed while loading: {exc}") from None
            self.info = info
            logger.info(
                "TLS certificate loaded: %s, serial %x, valid until %s",
                info.subject,
                info.serial,
                info.not_after.isoformat(),
            )
            return info
