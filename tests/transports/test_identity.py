"""Device identities: creation, reload, file safety, device id syntax."""

from __future__ import annotations

import hashlib
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.fixtures.identity import count_loads
from transports import BadDeviceId, Identity, IdentityError, normalize_device_id
from transports.identity import CERT_FILE, KEY_FILE

ID = "0123456789abcdef" * 4


def test_identity_is_created_once_and_stable_across_reloads(key_dir: Path) -> None:
    first = Identity.load_or_create(key_dir)
    again = Identity.load_or_create(key_dir)
    assert again.device_id == first.device_id
    assert again.cert_der == first.cert_der
    assert len(first.device_id) == 64
    assert normalize_device_id(first.device_id) == first.device_id
    pem = (key_dir / CERT_FILE).read_text()
    assert first.device_id == hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    # Byte for byte the id devices were paired with when cryptography computed it.
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert (again.cert_der, again.device_id) == (der, hashlib.sha256(der).hexdigest())


def test_key_file_is_private(key_dir: Path) -> None:
    identity = Identity.load_or_create(key_dir)
    assert stat.S_IMODE(identity.key_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in key_dir.iterdir()) == sorted([CERT_FILE, KEY_FILE])


def test_each_device_gets_its_own_id(tmp_path: Path) -> None:
    one = Identity.load_or_create(tmp_path / "one")
    two = Identity.load_or_create(tmp_path / "two")
    assert one.device_id != two.device_id


def test_key_readable_by_others_is_refused_and_left_alone(key_dir: Path) -> None:
    identity = Identity.load_or_create(key_dir)
    identity.key_path.chmod(0o644)
    before = identity.key_path.read_bytes()
    with pytest.raises(IdentityError, match="chmod 600"):
        Identity.load_or_create(key_dir)
    assert identity.key_path.read_bytes() == before


def test_corrupt_certificate_is_reported_never_replaced(key_dir: Path) -> None:
    Identity.load_or_create(key_dir)
    (key_dir / CERT_FILE).write_bytes(b"not a certificate")
    with pytest.raises(IdentityError, match="corrupt device identity"):
        Identity.load_or_create(key_dir)
    assert (key_dir / CERT_FILE).read_bytes() == b"not a certificate"


def test_certificate_without_its_key_is_an_error(key_dir: Path) -> None:
    Identity.load_or_create(key_dir)
    (key_dir / KEY_FILE).unlink()
    with pytest.raises(IdentityError, match=r"key .* is missing"):
        Identity.load_or_create(key_dir)


def test_key_of_another_device_is_refused(tmp_path: Path) -> None:
    one = Identity.load_or_create(tmp_path / "one")
    two = Identity.load_or_create(tmp_path / "two")
    one.key_path.write_bytes(two.key_path.read_bytes())
    with pytest.raises(IdentityError, match="does not belong"):
        Identity.load_or_create(tmp_path / "one")


def test_a_create_cut_short_before_the_certificate_starts_over(key_dir: Path) -> None:
    first = Identity.load_or_create(key_dir)
    (key_dir / CERT_FILE).unlink()  # as if we crashed between the two renames
    fresh = Identity.load_or_create(key_dir)
    assert fresh.device_id != first.device_id
    assert Identity.load_or_create(key_dir).device_id == fresh.device_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ID, ID),
        (ID.upper(), ID),
        (f"  {ID}\n", ID),
        (":".join(ID.upper()[i : i + 2] for i in range(0, 64, 2)), ID),
    ],
)
def test_device_ids_are_normalised(text: str, expected: str) -> None:
    assert normalize_device_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        ID[:-1],
        ID + "0",
        ID[:-1] + "g",
        ":".join(ID[i : i + 4] for i in range(0, 64, 4)),  # wrong grouping
        ":".join(ID[i : i + 2] for i in range(0, 62, 2)),  # 31 pairs
        ID[:32] + " " + ID[32:],
        "SHA256:" + ID,
    ],
)
def test_malformed_device_ids_are_refused(text: str) -> None:
    with pytest.raises(BadDeviceId, match="malformed device id") as info:
        normalize_device_id(text)
    assert isinstance(info.value, ValueError)


def test_device_id_must_be_a_string() -> None:
    with pytest.raises(BadDeviceId, match="must be a string"):
        normalize_device_id(b"00" * 32)  # type: ignore[arg-type]


def test_a_loaded_identity_is_loaded_again_only_when_its_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = count_loads(monkeypatch)
    key_dir = tmp_path / "identity"
    first = Identity.load_or_create(key_dir)
    assert Identity.load_or_create(key_dir) is first
    assert len(loads) == 1
    first.key_path.chmod(0o600)  # the same mode, a new ctime: checked again
    assert Identity.load_or_create(key_dir) == first
    assert len(loads) == 2
    other = Identity.load_or_create(tmp_path / "other")
    for name in (KEY_FILE, CERT_FILE):  # replaced, as a restore from a backup would
        (tmp_path / "other" / name).replace(key_dir / name)
    assert Identity.load_or_create(key_dir).device_id == other.device_id
    assert len(loads) == 4
    first.key_path.chmod(0o640)  # mode only: refused at once, not served from the cache
    with pytest.raises(IdentityError, match="chmod 600"):
        Identity.load_or_create(key_dir)
