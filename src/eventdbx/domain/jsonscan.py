"""Precise JSON scanner mirroring serde_json's grammar, error wording and line/column positions.

Slow path only: jsontext uses it when the fast stdlib parse fails or cannot be trusted. Positions follow serde_json:
1-based line, column = UTF-8 bytes consumed on that line at the error point ("peek" errors count the peeked byte).
"""

from __future__ import annotations

import re

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsonnumbers import (
    I32_MAX,
    I64_MIN,
    U64_MAX,
    NumberOutOfRange,
    f64_from_parts,
)
from eventdbx.errors import JsonSyntaxError

MAX_DEPTH = 128
EOF_VALUE = "EOF while parsing a value"
EOF_STRING = "EOF while parsing a string"
EOF_OBJECT = "EOF while parsing an object"
EOF_LIST = "EOF while parsing a list"
CONTROL_CHAR = "control character (\\u0000-\\u001F) found while parsing a string"
_WS = " \t\n\r"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")
_STRING_STOP = re.compile(r'["\\\x00-\x1f]')


class _Fail(Exception):
    """An error code with the character index it is reported at."""

    def __init__(self, message: str, index: int, peek: bool, extra: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.extra = 1 if peek else extra


def position(text: str, index: int, peek: bool, extra: int = 0) -> tuple[int, int]:
    """serde_json position after char index `index` plus `extra` bytes (`peek`: one byte), clamped.

    serde reads bytes: an error raised after consuming one byte of a multi-byte character points
    into that character, hence the byte arithmetic.
    """
    data = text.encode("utf-8", "surrogatepass")
    end = len(text[:index].encode("utf-8", "surrogatepass")) + (1 if peek else extra)
    end = min(end, len(data))
    prefix = data[:end]
    return prefix.count(b"\n") + 1, end - (prefix.rfind(b"\n") + 1)


class Scanner:
    """Recursive-descent parser over a str; raises JsonSyntaxError with the reference message."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.i = 0
        self.depth = MAX_DEPTH

    def parse(self) -> JSONValue:
        """Parse the whole text as one JSON value."""
        try:
            value = self._value()
            if self._skip_ws() is not None:
                raise _Fail("trailing characters", self.i, True)
        except _Fail as fail:
            line, column = position(self.text, fail.index, False, fail.extra)
            raise JsonSyntaxError(f"{fail.message} at line {line} column {column}") from None
        return value

    # -- helpers -------------------------------------------------------------------------------------------
    def _skip_ws(self) -> str | None:
        text, i, n = self.text, self.i, self.n
        while i < n and text[i] in _WS:
            i += 1
        self.i = i
        return text[i] if i < n else None

    def _peek(self) -> str | None:
        return self.text[self.i] if self.i < self.n else None

    def _next(self) -> str | None:
        if self.i >= self.n:
            return None
        ch = self.text[self.i]
        self.i += 1
        return ch

    # -- values --------------------------------------------------------------------------------------------
    def _value(self) -> JSONValue:
        ch = self._skip_ws()
        if ch is None:
            raise _Fail(EOF_VALUE, self.i, True)
        if ch == "n":
            self.i += 1
            self._ident("ull")
            return None
        if ch == "t":
            self.i += 1
            self._ident("rue")
            return True
        if ch == "f":
            self.i += 1
            self._ident("alse")
            return False
        if ch == "-":
            self.i += 1
            return self._number(False)
        if "0" <= ch <= "9":
            return self._number(True)
        if ch == '"':
            self.i += 1
            return self._string()
        if ch in "[{":
            self.depth -= 1
            if self.depth == 0:
                raise _Fail("recursion limit exceeded", self.i, True)
            self.i += 1
            result = self._array() if ch == "[" else self._object()
            self.depth += 1
            return result
        raise _Fail("expected value", self.i, True)

    def _ident(self, rest: str) -> None:
        for expected in rest:
            got = self._next()
            if got is None:
                raise _Fail(EOF_VALUE, self.i, False)
            if got != expected:
                raise _Fail("expected ident", self.i - 1, True)

    def _array(self) -> list[JSONValue]:
        items: list[JSONValue] = []
        first = True
        while True:
            ch = self._skip_ws()
            if ch is None:
                raise _Fail(EOF_LIST, self.i, True)
            if ch == "]":
                self.i += 1
                return items
            if first:
                first = False
            elif ch == ",":
                self.i += 1
                nxt = self._skip_ws()
                if nxt == "]":
                    raise _Fail("trailing comma", self.i, True)
                if nxt is None:
                    raise _Fail(EOF_VALUE, self.i, True)
            else:
                raise _Fail("expected `,` or `]`", self.i, True)
            items.append(self._value())

    def _object(self) -> dict[str, JSONValue]:
        result: dict[str, JSONValue] = {}
        first = True
        while True:
            ch = self._skip_ws()
            if ch is None:
                raise _Fail(EOF_OBJECT, self.i, True)
            if ch == "}":
                self.i += 1
                return result
            if first:
                first = False
                if ch != '"':
                    raise _Fail("key must be a string", self.i, True)
            elif ch == ",":
                self.i += 1
                nxt = self._skip_ws()
                if nxt == "}":
                    raise _Fail("trailing comma", self.i, True)
                if nxt is None:
                    raise _Fail(EOF_VALUE, self.i, True)
                if nxt != '"':
                    raise _Fail("key must be a string", self.i, True)
            else:
                raise _Fail("expected `,` or `}`", self.i, True)
            self.i += 1
            key = self._string()
            colon = self._skip_ws()
            if colon is None:
                raise _Fail(EOF_OBJECT, self.i, True)
            if colon != ":":
                raise _Fail("expected `:`", self.i, True)
            self.i += 1
            result[key] = self._value()

    # -- strings -------------------------------------------------------------------------------------------
    def _string(self) -> str:
        text, n = self.text, self.n
        parts: list[str] = []
        start = i = self.i
        while True:
            stop = _STRING_STOP.search(text, i)
            i = n if stop is None else stop.start()
            if i == n:
                self.i = n
                raise _Fail(EOF_STRING, n, False)
            ch = text[i]
            if ch == '"':
                parts.append(text[start:i])
                self.i = i + 1
                return "".join(parts)
            if ch != "\\":
                raise _Fail(CONTROL_CHAR, i + 1, False)
            parts.append(text[start:i])
            self.i = i + 1
            parts.append(self._escape())
            start = i = self.i

    def _escape(self) -> str:
        ch = self._next()
        if ch is None:
            raise _Fail(EOF_STRING, self.i, False)
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if ch != "u":
            raise _Fail("invalid escape", self.i - 1, True)
        first = self._hex4()
        if 0xDC00 <= first <= 0xDFFF:
            raise _Fail("lone leading surrogate in hex escape", self.i, False)
        if not 0xD800 <= first <= 0xDBFF:
            return chr(first)
        for expected in "\\u":
            got = self._peek()
            if got is None:
                raise _Fail(EOF_STRING, self.i, False)
            self.i += 1
            if got != expected:
                raise _Fail("unexpected end of hex escape", self.i - 1, True)
        second = self._hex4()
        if not 0xDC00 <= second <= 0xDFFF:
            raise _Fail("lone leading surrogate in hex escape", self.i, False)
        return chr(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))

    def _hex4(self) -> int:
        start = self.i
        digits = self.text[start : start + 4]
        if len(digits) < 4 and len(digits.encode("utf-8", "surrogatepass")) < 4:
            self.i = self.n
            raise _Fail(EOF_STRING, self.n, False)
        if not all(c in _HEX for c in digits):
            raise _Fail("invalid escape", start, False, extra=4)  # serde consumed 4 bytes
        self.i = start + 4
        return int(digits, 16)

    # -- numbers -------------------------------------------------------------------------------------------
    def _digit(self) -> int | None:
        ch = self._peek()
        return ord(ch) - 48 if ch is not None and "0" <= ch <= "9" else None

    def _number(self, positive: bool) -> int | float:
        ch = self._next()
        if ch is None:
            raise _Fail(EOF_VALUE, self.i, False)
        if ch == "0":
            if self._digit() is not None:
                raise _Fail("invalid number", self.i, True)
            return self._after_integer(positive, 0)
        if not "1" <= ch <= "9":
            raise _Fail("invalid number", self.i - 1, True)
        sig = ord(ch) - 48
        while (d := self._digit()) is not None:
            if sig * 10 + d > U64_MAX:
                return self._long_integer(positive, sig)
            self.i += 1
            sig = sig * 10 + d
        return self._after_integer(positive, sig)

    def _after_integer(self, positive: bool, sig: int) -> int | float:
        ch = self._peek()
        if ch == ".":
            return self._decimal(positive, sig, 0)
        if ch in ("e", "E"):
            return self._exponent(positive, sig, 0)
        if positive:
            return sig
        if sig == 0 or -sig < I64_MIN:
            return -float(sig)
        return -sig

    def _long_integer(self, positive: bool, sig: int) -> float:
        exponent = 0
        while self._digit() is not None:
            self.i += 1
            exponent += 1
        ch = self._peek()
        if ch == ".":
            return self._decimal(positive, sig, exponent)
        if ch in ("e", "E"):
            return self._exponent(positive, sig, exponent)
        return self._from_parts(positive, sig, exponent)

    def _decimal(self, positive: bool, sig: int, exponent: int) -> float:
        self.i += 1
        accepted = 0
        overflowed = False
        while (d := self._digit()) is not None:
            if not overflowed and sig * 10 + d > U64_MAX:
                overflowed = True
            self.i += 1
            if not overflowed:
                sig = sig * 10 + d
                accepted += 1
        if accepted == 0 and not overflowed:
            ch = self._peek()
            raise _Fail("invalid number" if ch is not None else EOF_VALUE, self.i, True)
        exponent -= accepted
        if self._peek() in ("e", "E"):
            return self._exponent(positive, sig, exponent)
        return self._from_parts(positive, sig, exponent)

    def _exponent(self, positive: bool, sig: int, exponent: int) -> float:
        self.i += 1
        sign = self._peek()
        positive_exp = sign != "-"
        if sign in ("+", "-"):
            self.i += 1
        ch = self._next()
        if ch is None:
            raise _Fail(EOF_VALUE, self.i, False)
        if not "0" <= ch <= "9":
            raise _Fail("invalid number", self.i - 1, True)
        exp = ord(ch) - 48
        while (d := self._digit()) is not None:
            self.i += 1
            if exp * 10 + d > I32_MAX:
                if sig != 0 and positive_exp:
                    raise _Fail("number out of range", self.i, False)
                while self._digit() is not None:
                    self.i += 1
                return 0.0 if positive else -0.0
            exp = exp * 10 + d
        return self._from_parts(positive, sig, exponent + exp if positive_exp else exponent - exp)

    def _from_parts(self, positive: bool, sig: int, exponent: int) -> float:
        try:
            return f64_from_parts(not positive, sig, exponent)
        except NumberOutOfRange:
            raise _Fail("number out of range", self.i, False) from None
