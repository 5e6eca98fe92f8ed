"""Frozen keyword-only dataclasses defined without generated code, for classes on the `dbx` start-up path.

`dataclasses.dataclass` compiles source text for `__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__` and
`__delattr__` of every class when its module is imported: ~0.6 ms per class on CPython 3.11, a real share of a
60 ms CLI budget. `frozen_record` lets dataclasses collect the fields only and attaches shared generic methods
with the same behaviour, so instances remain dataclass instances (`fields()`, `replace()`, `asdict()` work).
The generic methods are slower per call: use it for classes built a few times per process (settings), never
for per-event records. Type checkers see `dataclasses.dataclass` (see config.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

_C = TypeVar("_C", bound=type)
_MISSING: Any = dataclasses.MISSING


def _spec(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    fields: tuple[dataclasses.Field[Any], ...] = cls.__record_fields__  # type: ignore[attr-defined]
    return fields


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    if args:
        raise TypeError(
            f"{cls.__qualname__}.__init__() takes 1 positional argument but {len(args) + 1} were given"
        )
    missing: list[str] = []
    taken = 0
    for f in _spec(cls):
        if f.init and f.name in kwargs:
            value = kwargs[f.name]
            taken += 1
        elif f.default is not _MISSING:
            value = f.default
        elif f.default_factory is not _MISSING:
            value = f.default_factory()  # type: ignore[operator]
        else:
            missing.append(f.name)
            continue
        object.__setattr__(self, f.name, value)
    if taken != len(kwargs):
        names = {f.name for f in _spec(cls) if f.init}
        unknown = next(k for k in kwargs if k not in names)
        raise TypeError(
            f"{cls.__qualname__}.__init__() got an unexpected keyword argument '{unknown}'"
        )
    if missing:
        raise TypeError(f"{cls.__qualname__}.__init__() {_missing_text(missing)}")
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _missing_text(names: list[str]) -> str:
    """CPython's wording for missing keyword-only arguments."""
    quoted = [repr(name) for name in names]
    if len(quoted) == 1:
        return f"missing 1 required keyword-only argument: {quoted[0]}"
    listed = (
        f"{quoted[0]} and {quoted[1]}"
        if len(quoted) == 2
        else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    )
    return f"missing {len(quoted)} required keyword-only arguments: {listed}"


def _repr(self: Any) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in _spec(type(self)) if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _compared(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in _spec(type(self)) if f.compare)


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is self.__class__:
        return _compared(self) == _compared(other)
    return NotImplemented  # type: ignore[no-any-return]


def _hash(self: Any) -> int:
    hashed = (f for f in _spec(type(self)) if (f.compare if f.hash is None else f.hash))
    return hash(tuple(getattr(self, f.name) for f in hashed))


def _setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in _spec(type(self))]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(_spec(type(self)), state, strict=True):
        object.__setattr__(self, f.name, value)


def frozen_record(
    *, frozen: bool = True, slots: bool = True, kw_only: bool = True
) -> Callable[[_C], _C]:
    """Like `@dataclass(frozen=True, slots=True, kw_only=True)` (the only combination it supports)."""
    if not (frozen and slots and kw_only):
        raise TypeError("frozen_record supports only frozen=True, slots=True, kw_only=True")

    def wrap(cls: _C) -> _C:
        built: Any = dataclasses.dataclass(
            init=False, repr=False, eq=False, slots=True, kw_only=True
        )(cls)
        built.__record_fields__ = dataclasses.fields(built)
        methods = {
            "__init__": _init,
            "__repr__": _repr,
            "__eq__": _eq,
            "__hash__": _hash,
            "__setattr__": _setattr,
            "__delattr__": _delattr,
            "__getstate__": _getstate,
            "__setstate__": _setstate,
        }
        for name, method in methods.items():
            type.__setattr__(built, name, method)
        result: _C = built
        return result

    return wrap
