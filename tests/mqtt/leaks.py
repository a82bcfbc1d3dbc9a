"""Find a secret in captured output: raw, and in the encodings a careless line would use.

``find_leaks(secrets, sources)`` looks for every secret in every source (bytes) as:
the text itself (UTF-8 and UTF-16), hex of it (either case), base64 and base64url at
each of the three byte alignments (so a secret inside a longer encoded value is found
too), URL-encoding, the digits as a SIM stores them (swapped-nibble BCD, in hex), and
unsalted MD5/SHA-1/SHA-256 digests (a 4-8 digit PIN is brute-forced from those).
A salted, slow digest (the PIN guard's scrypt record) is not a leak and is not looked for.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["Leak", "encodings", "find_leaks"]


@dataclass(frozen=True)
class Leak:
    """One find: which secret, in which form, where."""

    secret: str  # the secret's name, never its value
    form: str
    source: str
    context: bytes  # a few bytes around it, with the secret itself masked


def _base64_forms(raw: bytes) -> dict[str, bytes]:
    forms: dict[str, bytes] = {}
    for k in range(3):
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = enc(b"\0" * k + raw).rstrip(b"=")
            # Leave out the characters that also depend on bytes before or after it.
            start = 4 if k else 0
            end = len(text) - (len(text) % 4 if (k + len(raw)) % 3 else 0)
            forms[f"{name}@{k}"] = text[start:end]
    return forms


def _bcd(secret: str) -> bytes | None:
    if not secret.isdigit():
        return None
    digits = secret + ("F" if len(secret) % 2 else "")
    return "".join(b + a for a, b in zip(digits[::2], digits[1::2], strict=True)).encode()


def encodings(secret: str) -> dict[str, bytes]:
    """Every form of ``secret`` that is looked for, by name."""
    raw = secret.encode()
    forms = {
        "raw": raw,
        "utf-16-le": secret.encode("utf-16-le"),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "url": quote(secret, safe="").encode(),
        "md5": hashlib.md5(raw).hexdigest().encode(),  # looked for, never used
        "sha1": hashlib.sha1(raw).hexdigest().encode(),
        "sha256": hashlib.sha256(raw).hexdigest().encode(),
        **_base64_forms(raw),
    }
    if (bcd := _bcd(secret)) is not None:
        forms["bcd"] = bcd
    return {name: form for name, form in forms.items() if len(form) >= 4}


def find_leaks(secrets: Mapping[str, str], sources: Iterable[tuple[str, bytes]]) -> list[Leak]:
    """Every place a secret (``{name: value}``) shows up in ``sources`` (``(name, bytes)``)."""
    wanted = [
        (name, form, needle) for name, v in secrets.items() for form, needle in encodings(v).items()
    ]
    leaks: list[Leak] = []
    for source, data in sources:
        for name, form, needle in wanted:
            at = data.find(needle)
            if at >= 0:
                around = data[max(0, at - 40) : at + len(needle) + 40]
                leaks.append(
                    Leak(name, form, source, around.replace(needle, b"<" + form.encode() + b">"))
                )
    return leaks
