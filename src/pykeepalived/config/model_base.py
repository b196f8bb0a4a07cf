"""How the configuration model's classes are made: dataclasses, built cheaply for start-up.

The model (config/model.py) has some 40 dataclasses and 700 fields. Python
3.11's `@dataclass` writes and compiles an `__init__`, `__repr__` and
`__eq__` for each class when the module is imported: about 15 ms, most of
what `-t` spent importing the configuration reader (bench/startup.py). So:

- `__repr__` and `__eq__` are written once, here, for every model class
  (`ModelObject`), with dataclasses' rules: the fields with repr=True as
  `Name(field=value, ...)` ("..." for a recursive reference), equality only
  between objects of the same class, comparing the fields with compare=True
  as tuples;
- `__init__` is still the one `@dataclass` writes, but written on the first
  construction of each class (`model`): a config builds a dozen of the
  classes, rarely more;
- the classes have `__slots__` (`@dataclass(slots=True)`): a model object
  has no instance dict, which at 6,000 real servers (bench/checks.py) was
  0.8 MiB of the checker's peak, for about 2 ms more at import. Nothing can
  set a name the class does not declare (handlers.store refused it anyway).

`dataclasses.fields()`, `replace()`, `asdict()`, `__match_args__` and the
classes' signatures to a type checker are those of plain dataclasses (mypy
sees `model` as `dataclasses.dataclass`).
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

__all__ = ["ModelObject", "model"]

T = TypeVar("T")

_REPR_NAMES: dict[type, tuple[str, ...]] = {}
_COMPARE_NAMES: dict[type, tuple[str, ...]] = {}


class ModelObject:
    """The base of every model class: one `__repr__` and `__eq__` for all (see the module's docstring)."""

    __slots__ = ()

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        cls = type(self)
        names = _REPR_NAMES.get(cls)
        if names is None:
            names = _REPR_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cast(Any, self)) if f.repr)
        return f"{cls.__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in names)})"

    def __eq__(self, other: object) -> bool:
        cls = type(self)
        if other.__class__ is not cls:
            return NotImplemented
        names = _COMPARE_NAMES.get(cls)
        if names is None:
            names = _COMPARE_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cast(Any, self)) if f.compare)
        return tuple(getattr(self, name) for name in names) == tuple(getattr(other, name) for name in names)

    # __hash__ stays None, as for a dataclass with eq=True that is not frozen: model objects are mutable


def _real_init(cls: type) -> Callable[..., None]:
    """The `__init__` @dataclass would have written for `cls`, written now (on a copy of its fields)."""
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                 "__annotations__": {}, "__doc__": cls.__doc__}  # a doc: no signature to compute
    for f in dataclasses.fields(cls):
        namespace["__annotations__"][f.name] = f.type
        namespace[f.name] = dataclasses.field(default=f.default, default_factory=f.default_factory, init=f.init,
                                              repr=f.repr, hash=f.hash, compare=f.compare, metadata=f.metadata,
                                              kw_only=f.kw_only)
    if hasattr(cls, "__post_init__"):
        namespace["__post_init__"] = cls.__post_init__
    shadow: type = dataclasses.dataclass(repr=False, eq=False)(type(cls.__name__, (), namespace))
    return cast(Callable[..., None], shadow.__dict__["__init__"])


def _lazy_init(cls: type) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = _real_init(cls)
        setattr(cls, "__init__", init)  # the next construction calls it directly
        init(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _model(cls: type[T]) -> type[T]:
    """@dataclass with slots, without its per-class `__repr__`/`__eq__` (ModelObject's), `__init__` made lazily."""
    if not cls.__dict__.get("__doc__"):  # dataclass would describe the lazy __init__'s (*args, **kwargs)
        cls.__doc__ = f"{cls.__name__}: a configuration model class; its fields are its constructor's arguments."
    made = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(cls)
    setattr(made, "__init__", _lazy_init(made))
    return made


if TYPE_CHECKING:
    from dataclasses import dataclass as model
else:
    model = _model
