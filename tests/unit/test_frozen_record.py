"""frozen_record behaves like @dataclass(frozen=True, slots=True, kw_only=True), observed side by side."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from eventdbx.frozen import frozen_record


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Real:
    """The reference: a generated dataclass."""

    name: str
    size: int = 3
    tags: tuple[str, ...] = ()
    extra: list[int] = dataclasses.field(default_factory=list, compare=False, repr=False)


@frozen_record(frozen=True, slots=True, kw_only=True)
class Light:
    """The same fields through frozen_record."""

    name: str
    size: int = 3
    tags: tuple[str, ...] = ()
    extra: list[int] = dataclasses.field(default_factory=list, compare=False, repr=False)


@frozen_record(frozen=True, slots=True, kw_only=True)
class Wide:
    """Three required fields (CPython lists them with commas and "and")."""

    a: int
    b: int
    c: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WideReal:
    """Wide's reference."""

    a: int
    b: int
    c: int


def _pair(**kw: Any) -> tuple[Real, Light]:
    return Real(**kw), Light(**kw)


def _error(call: Any) -> str:
    with pytest.raises(Exception) as info:
        call()
    return (
        f"{type(info.value).__name__}: {info.value}".replace("WideReal", "X")
        .replace("Wide", "X")
        .replace("Real", "X")
        .replace("Light", "X")
    )


def test_init_defaults_repr_eq_hash() -> None:
    real, light = _pair(name="a", tags=("t",))
    assert (
        repr(light) == repr(real).replace("Real", "Light") == "Light(name='a', size=3, tags=('t',))"
    )
    assert light == Light(name="a", tags=("t",), extra=[1]) and light != Light(name="b")
    assert light != real and (light == 1) is False
    assert hash(light) == hash(Light(name="a", tags=("t",))) == hash(real)
    assert light.extra == [] and light.extra is not Light(name="a").extra
    assert not hasattr(light, "__dict__")
    assert Light.__match_args__ == Real.__match_args__ == ()


def test_errors_match_generated_code() -> None:
    assert _error(lambda: Light(size=1)) == _error(lambda: Real(size=1))
    assert _error(lambda: Wide()) == _error(lambda: WideReal())
    assert _error(lambda: Light(name="a", bogus=1)) == _error(lambda: Real(name="a", bogus=1))
    assert _error(lambda: Light("a")) == _error(lambda: Real("a"))  # type: ignore[misc]
    real, light = _pair(name="a")
    assert _error(lambda: setattr(light, "size", 1)) == _error(lambda: setattr(real, "size", 1))
    assert _error(lambda: delattr(light, "size")) == _error(lambda: delattr(real, "size"))


def test_dataclass_tools_and_copies() -> None:
    light = Light(name="a", size=5)
    assert dataclasses.is_dataclass(light)
    assert [f.name for f in dataclasses.fields(light)] == ["name", "size", "tags", "extra"]
    changed = dataclasses.replace(light, size=6)
    assert (changed.name, changed.size, light.size) == ("a", 6, 5)
    assert dataclasses.asdict(light) == {"name": "a", "size": 5, "tags": (), "extra": []}
    assert pickle.loads(pickle.dumps(light)) == light
    assert copy.copy(light) == light and copy.deepcopy(light) == light


def test_only_the_frozen_kw_only_slots_shape() -> None:
    with pytest.raises(TypeError):
        frozen_record(frozen=False)


@frozen_record(frozen=True, slots=True, kw_only=True)
class Derived:
    """A post-init hook and a field outside __init__."""

    base: int
    doubled: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", self.base * 2)


def test_init_is_compiled_once_with_post_init_and_non_init_fields() -> None:
    assert Derived(base=2).doubled == 4
    init = Derived.__init__
    assert init.__qualname__ == "Derived.__init__"
    assert Derived(base=5).doubled == 10 and Derived.__init__ is init
    with pytest.raises(TypeError, match="unexpected keyword argument 'doubled'"):
        Derived(base=1, doubled=3)  # type: ignore[call-arg]
    first, second = Light(name="a"), Light(name="a")
    assert first.extra == [] and first.extra is not second.extra


@frozen_record(frozen=True, slots=True, kw_only=True)
class Child(Wide):
    """A record extending another: its fields live in the parent's slots and its own."""

    d: int = 4


def test_fields_are_stored_in_their_slots_including_inherited_ones() -> None:
    child = Child(a=1, b=2, c=3)
    assert (child.a, child.b, child.c, child.d) == (1, 2, 3, 4)
    assert dataclasses.asdict(child) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert "a" in Wide.__dict__ and "a" not in Child.__dict__ and "d" in Child.__dict__
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.d = 5  # type: ignore[misc]
    assert Child(a=9, b=8, c=7, d=6) == Child(a=9, b=8, c=7, d=6) != child
