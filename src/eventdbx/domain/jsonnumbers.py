"""JSON numbers of data-model.md §4: the reference's exact (not correctly rounded) parse and Ryu "pretty" printing.

Pure functions on number tokens and Python numbers; no parsing of whole documents here.
"""

from __future__ import annotations

import math
import re

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I32_MAX = (1 << 31) - 1
POW10: tuple[float, ...] = tuple(float(f"1e{k}") for k in range(309))
"""Correctly rounded doubles 1e0 … 1e308 (the reference's table)."""

_TOKEN = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?)(\d+))?")


class NumberOutOfRange(ValueError):
    """The number overflows f64 (`number out of range`)."""


def _accept_digits(sig: int, digits: str) -> tuple[int, int]:
    """Accept digits into the u64 significand while `sig*10+d <= u64::MAX`; return (sig, accepted count)."""
    candidate = sig * 10 ** len(digits) + int(digits)
    if candidate <= U64_MAX:
        return candidate, len(digits)
    count = 0
    for ch in digits:
        nxt = sig * 10 + (ord(ch) - 48)
        if nxt > U64_MAX:
            break
        sig = nxt
        count += 1
    return sig, count


def f64_from_parts(negative: bool, sig: int, exponent: int) -> float:
    """`f = float(s)` then scale by the correctly rounded powers of ten, exactly as the reference does."""
    f = float(sig)
    while True:
        if -309 < exponent < 309:
            if exponent >= 0:
                f *= POW10[exponent]
                if math.isinf(f):
                    raise NumberOutOfRange
            else:
                f /= POW10[-exponent]
            break
        if f == 0.0:
            break
        if exponent >= 0:
            raise NumberOutOfRange
        f /= 1e308
        exponent += 308
    return -f if negative else f


def _exponent_value(sign: str, digits: str, sig: int) -> int | None:
    """The explicit exponent, or None when it overflowed i32 towards zero (result is ±0.0)."""
    value = int(digits)
    if value > I32_MAX:
        # The reference stops at the digit that would overflow i32.
        if sig != 0 and sign != "-":
            raise NumberOutOfRange
        return None
    return -value if sign == "-" else value


def number_from_token(token: str) -> int | float:
    """Value of a syntactically valid JSON number token per §4 (raises NumberOutOfRange)."""
    m = _TOKEN.fullmatch(token)
    if m is None:
        raise ValueError(f"not a JSON number: {token!r}")
    sign, int_digits, frac_digits, exp_sign, exp_digits = m.groups()
    negative = sign == "-"
    if frac_digits is None and exp_digits is None:
        value = int(int_digits) if len(int_digits) < 4300 else U64_MAX + 1
        if negative:
            if value == 0:
                return -0.0
            if -value >= I64_MIN:
                return -value
        elif value <= U64_MAX:
            return value
    sig, accepted = _accept_digits(0, int_digits)
    exponent = len(int_digits) - accepted
    if frac_digits is not None:
        sig, accepted = _accept_digits(sig, frac_digits)
        exponent -= accepted
    if exp_digits is not None:
        explicit = _exponent_value(exp_sign, exp_digits, sig)
        if explicit is None:
            return -0.0 if negative else 0.0
        exponent += explicit
    return f64_from_parts(negative, sig, exponent)


def parse_float_token(token: str) -> float:
    """`json.loads` parse_float hook: short plain decimals are exact anyway, the rest take the §4 path."""
    if len(token) <= 16 and "e" not in token and "E" not in token:
        return float(token)
    result = number_from_token(token)
    return float(result)


def parse_int_token(token: str) -> int | float:
    """`json.loads` parse_int hook: u64/i64 stay ints, `-0` and wider tokens become doubles."""
    if len(token) < 19:
        value = int(token)
        if value == 0 and token[0] == "-":
            return -0.0
        return value
    return number_from_token(token)


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of |value| (non-zero, finite) and kk with 10^(kk-1) <= |v| < 10^kk."""
    text = repr(abs(value))
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    kk = len(int_part) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    kk -= len(digits) - len(stripped)
    return stripped.rstrip("0"), kk


def format_float(value: float) -> str:
    """Ryu "pretty" layout of a finite double (§4 printing table)."""
    text = repr(value)
    if "e" not in text:  # repr already uses the plain layout for 1e-4 <= |v| < 1e16
        if "n" in text:  # inf / nan
            raise ValueError(f"non-finite number {text} cannot be printed as JSON")
        return text
    digits, kk = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    n = len(digits)
    if n <= kk <= 16:
        body = digits + "0" * (kk - n) + ".0"
    elif 0 < kk <= 16:
        body = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        body = "0." + "0" * (-kk) + digits
    elif n == 1:
        body = f"{digits}e{kk - 1}"
    else:
        body = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + body


def format_number(value: int | float) -> str:
    """§4 text of a number: ints as decimals, doubles in the Ryu "pretty" layout."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    if isinstance(value, int):
        if I64_MIN <= value <= U64_MAX:
            return str(value)
        if value.bit_length() > 1030:  # far beyond f64 (and str()'s digit limit)
            raise NumberOutOfRange
        return format_float(number_from_token(str(value)) * 1.0)
    return format_float(value)
