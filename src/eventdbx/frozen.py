"""Frozen keyword-only dataclasses that cost little to define, for classes on the `dbx` start-up path.

`dataclasses.dataclass` compiles source text for `__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__` and
`__delattr__` of every class when its module is imported: ~0.6 ms per class on CPython 3.11, a real share of a
60 ms CLI budget when a dozen classes load. `frozen_record` lets dataclasses collect the fields only, compiles
a specialised `__init__` (the one hot method) on the class's first instantiation, and attaches shared generic
`__repr__`/`__eq__`/`__hash__`/frozen `__setattr__`/`__delattr__` with the same behaviour. Instances remain
dataclass instances (`fields()`, `replace()`, `asdict()` work) and construct as fast as generated ones; equality
and hashing are slower per call. Type checkers see `dataclasses.dataclass` (see config.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any, TypeVar

_C = TypeVar("_C", bound=type)
_MISSING: Any = dataclasses.MISSING


def _spec(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    fields: tuple[dataclasses.Field[Any], ...] = cls.__record_fields__  # type: ignore[attr-defined]
    return fields


class _NoValue:
    """Default of a factory field's parameter: "not given, call the factory"."""


_NO_VALUE = _NoValue()


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None] | None:
    """The bound `__set__` of the slot holding `name`, or None when it is not a plain slot."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            slot = klass.__dict__[name]
            return slot.__set__ if isinstance(slot, MemberDescriptorType) else None
    return None


def _init_source(
    cls: type, fields: tuple[dataclasses.Field[Any], ...], post_init: bool
) -> tuple[str, dict[str, Any]]:
    """Source of the `__init__` dataclasses would generate for these kw-only fields, and its globals."""
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_NO_VALUE": _NO_VALUE}
    params: list[str] = []
    body: list[str] = []

    def store(n: int, name: str, value: str) -> str:
        # The slot's own setter skips the attribute look-up that object.__setattr__ does on every call
        # (~1/3 cheaper per field); a frozen record's __init__ stores every field this way.
        setter = _slot_setter(cls, name)
        if setter is None:
            return f"    _set(self, {name!r}, {value})"
        namespace[f"_set_{n}"] = setter
        return f"    _set_{n}(self, {value})"

    for n, f in enumerate(fields):
        default, factory = f"_default_{n}", f"_factory_{n}"
        namespace[default], namespace[factory] = f.default, f.default_factory
        if not f.init:
            if f.default is not _MISSING:
                body.append(store(n, f.name, default))
            elif f.default_factory is not _MISSING:
                body.append(store(n, f.name, f"{factory}()"))
            continue
        if f.default is not _MISSING:
            params.append(f"{f.name}={default}")
        elif f.default_factory is not _MISSING:
            params.append(f"{f.name}=_NO_VALUE")
            body.append(f"    {f.name} = {factory}() if {f.name} is _NO_VALUE else {f.name}")
        else:
            params.append(f.name)
        body.append(store(n, f.name, f.name))
    if post_init:
        body.append("    self.__post_init__()")
    signature = f"self, *, {', '.join(params)}" if params else "self"
    return f"def __init__({signature}):\n" + "\n".join(body or ["    pass"]) + "\n", namespace


def _compile_init(cls: type) -> Callable[..., None]:
    """Build and install the class's specialised `__init__` (first instantiation only)."""
    source, namespace = _init_source(cls, _spec(cls), hasattr(cls, "__post_init__"))
    exec(source, namespace)  # what dataclasses does at import; here once, on first use
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    type.__setattr__(cls, "__init__", init)
    return init


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

        def first_init(self: Any, *args: Any, **kwargs: Any) -> None:
            _compile_init(built)(self, *args, **kwargs)

        methods = {
            "__init__": first_init,
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
