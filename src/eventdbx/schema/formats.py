"""The `format` rule's checks (data-model.md §11): email address, URL, credit card number (Luhn). Pure."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from eventdbx.schema.column_types import FieldFormat

_EMAIL_USER = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+", re.I | re.ASCII)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.I | re.ASCII)
_EMAIL_LITERAL = re.compile(r"\[([A-Fa-f0-9:.]+)\]", re.ASCII)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*", re.ASCII)
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_FORBIDDEN_HOST = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|]")
_C0_SPACE = "".join(chr(c) for c in range(0x21))


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _valid_email_domain(domain: str) -> bool:
    if _EMAIL_DOMAIN.fullmatch(domain):
        return True
    literal = _EMAIL_LITERAL.fullmatch(domain)
    if literal is not None:
        return _valid_ip(literal.group(1))
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return ascii_domain != domain and _EMAIL_DOMAIN.fullmatch(ascii_domain) is not None


def is_email(text: str) -> bool:
    """HTML5-style address: `user@domain` (user ≤ 64 chars, domain ≤ 255, IDN domains allowed)."""
    if "@" not in text:
        return False
    user, _, domain = text.rpartition("@")
    if len(user) > 64 or len(domain) > 255:
        return False
    return _EMAIL_USER.fullmatch(user) is not None and _valid_email_domain(domain)


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        return host.endswith("]") and _valid_ip(host[1:-1])
    return bool(host) and _FORBIDDEN_HOST.search(host) is None


def is_url(text: str) -> bool:
    """An absolute URL: a scheme, and for web schemes (http, https, ws, wss, ftp) a valid host."""
    value = text.strip(_C0_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    scheme, colon, rest = value.partition(":")
    if not colon or _SCHEME.fullmatch(scheme) is None:
        return False
    if scheme.lower() not in _SPECIAL_SCHEMES:
        return True
    try:
        parts = urlsplit("//" + rest.lstrip("/\\"))
        host = parts.hostname if not parts.netloc.endswith("@") else None
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    netloc_host = parts.netloc.rpartition("@")[2]
    if netloc_host.startswith("["):
        return _valid_host(netloc_host.partition("]")[0] + "]")
    return host is not None and _valid_host(host)


def is_credit_card(text: str) -> bool:
    """Digits after dropping spaces and hyphens, 12-19 of them, passing the Luhn check."""
    digits = text.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


FORMAT_CHECKS = {
    FieldFormat.EMAIL: (is_email, "must be a valid email address"),
    FieldFormat.URL: (is_url, "must be a valid URL"),
    FieldFormat.CREDIT_CARD: (is_credit_card, "must be a valid credit card number"),
}
