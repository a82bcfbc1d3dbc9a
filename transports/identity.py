"""Device identities: a self-signed certificate whose SHA-256 fingerprint is the device id.

Pairing means exchanging device ids out of band (shown, typed or scanned); the TLS
layer then pins them. EC P-256 keys: OpenSSL 3's TLS 1.3 signs with them everywhere.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import re
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadDeviceId, IdentityError

__all__ = ["CERT_FILE", "KEY_FILE", "Identity", "device_id_of", "normalize_device_id"]

CERT_FILE = "device-cert.pem"
KEY_FILE = "device-key.pem"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_COLON_HEX = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){31}")
# RFC 5280 4.1.2.5: this date means "no well-defined expiration"; pinning, not expiry,
# decides trust, and an expired pinned cert would otherwise break the pairing silently.
_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)

#: File stamp: what changes when a file is replaced (inode), rewritten (mtime, size) or
#: has its owner or mode changed (mode, uid, gid themselves: ctime alone can keep its
#: value within one tick of a coarse filesystem clock, as on kernels before 6.13).
_Stamp = tuple[int, int, int, int, int, int, int, int]
# Identities loaded, by directory, with their two files' stamps then: the daemon asks for
# its identity at every sync, and loading it (OpenSSL reading both files into a
# throwaway context, to check them as TLS will) costs ~2 ms. Files changed since are
# loaded (and checked) again. (A same-size rewrite of the same inode within one tick of
# the filesystem's clock after the write before keeps its stamp; identities are written
# by replacing their files, so ours never are.)
_loaded: dict[Path, tuple[tuple[_Stamp, _Stamp], Identity]] = {}


def device_id_of(cert_der: bytes) -> str:
    """The device id of a DER certificate: its SHA-256 fingerprint, 64 lowercase hex."""
    return hashlib.sha256(cert_der).hexdigest()


def normalize_device_id(text: str) -> str:
    """Return *text* as a canonical device id (64 lowercase hex digits).

    Accepts that form (any case) and the colon-separated form ``AB:CD:...`` (32 pairs);
    surrounding whitespace is ignored. Anything else raises ``BadDeviceId``.
    """
    if not isinstance(text, str):
        raise BadDeviceId(f"a device id must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if _COLON_HEX.fullmatch(stripped):
        return stripped.replace(":", "").lower()
    lowered = stripped.lower()
    if _HEX64.fullmatch(lowered):
        return lowered
    raise BadDeviceId(
        f"malformed device id {text!r}: expected 64 hex digits (the SHA-256 fingerprint "
        "of the device certificate), optionally as 32 colon-separated pairs"
    )


@dataclass(frozen=True)
class Identity:
    """This device's certificate and key, as files the ``ssl`` module can load."""

    cert_path: Path
    key_path: Path
    cert_der: bytes = field(repr=False)
    device_id: str

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str]) -> Identity:
        """Load the identity kept in *directory*, creating it (once) if there is none.

        The key file is written with mode 0600 and both files atomically (temporary
        file, fsync, rename; key first, so a crash never leaves a certificate whose
        key is missing). An identity that exists but is unreadable, mismatched or
        readable by others raises ``IdentityError`` and is never replaced.

        Loaded once per process while its files stay as they were: a file replaced,
        rewritten or with its mode changed (another inode, mtime, size or ctime) is
        loaded and checked again at the next call.
        """
        folder = Path(directory)
        cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
        if not cert_path.exists():
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                # A key without a certificate is a create cut short: start over.
                _create(cert_path, key_path)
            except OSError as exc:
                raise IdentityError(f"cannot create a device identity in {folder}: {exc}") from exc
        elif not key_path.exists():
            raise IdentityError(
                f"{cert_path} exists but its key {key_path} is missing: restore the key, or "
                "delete the certificate to make a new identity (peers must then pair again)"
            )
        try:  # before reading: a change from here on makes the next call load again
            stamps = (_stamp(cert_path), _stamp(key_path))
        except OSError:
            return cls._load(cert_path, key_path)  # it says what is wrong
        cached = _loaded.get(folder)
        if cached is not None and cached[0] == stamps:
            return cached[1]
        identity = cls._load(cert_path, key_path)
        _loaded[folder] = (stamps, identity)
        return identity

    @classmethod
    def _load(cls, cert_path: Path, key_path: Path) -> Identity:
        try:
            mode = key_path.stat().st_mode
            cert_pem = cert_path.read_bytes()
            key_path.read_bytes()  # readable (OpenSSL below would only say "PEM lib")
        except OSError as exc:
            raise IdentityError(f"cannot read the device identity: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise IdentityError(
                f"{key_path} is accessible by other users (mode {stat.S_IMODE(mode):04o}); "
                f"run: chmod 600 {key_path}"
            )
        # OpenSSL reads both files as TLS will, and checks the key is the certificate's;
        # the DER is the PEM block's base64. cryptography's x509 (~85 ms to import) is
        # needed only to make an identity, not to use one.
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_path, key_path)
            der = _der(cert_pem)
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise IdentityError(
                    f"{key_path} does not belong to the certificate {cert_path}"
                ) from exc
            raise IdentityError(f"corrupt device identity in {cert_path.parent}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise IdentityError(f"corrupt device identity in {cert_path.parent}: {exc}") from exc
        return cls(cert_path, key_path, der, device_id_of(der))


def _stamp(path: Path) -> _Stamp:
    st = path.stat()
    return (
        st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size,
        st.st_mode, st.st_uid, st.st_gid,
    )  # fmt: skip


def _der(cert_pem: bytes) -> bytes:
    """The DER bytes of the first certificate in a PEM file (ValueError if there is none)."""
    text = cert_pem.decode("ascii", "replace")
    start = text.find(ssl.PEM_HEADER)
    end = text.find(ssl.PEM_FOOTER, start)
    if start < 0 or end < 0:
        raise ValueError("no PEM certificate block")
    return ssl.PEM_cert_to_DER_cert(text[start : end + len(ssl.PEM_FOOTER)])


def _make_pair() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "simsync device")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # tolerate skewed peer clocks
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _atomic_write(path: Path, data: bytes) -> None:
    import tempfile  # with shutil, bz2 and lzma: only when an identity is made

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create(cert_path: Path, key_path: Path) -> None:
    cert_pem, key_pem = _make_pair()
    _atomic_write(key_path, key_pem)
    _atomic_write(cert_path, cert_pem)
    dir_fd = os.open(cert_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the renames themselves durable
    finally:
        os.close(dir_fd)
