"""The configuration model's classes behave as plain dataclasses, built cheaply (config/model_base.py)."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import textwrap

import pytest

from pathlib import Path

from pykeepalived.config import model
from pykeepalived.config.model_base import ModelObject

CLASSES = [c for c in vars(model).values()
           if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == model.__name__]


def twin(cls: type) -> type:
    """The class as a plain @dataclass (same fields, defaults and factories, no base) for comparison."""
    ns: dict[str, object] = {"__annotations__": {f.name: f.type for f in dataclasses.fields(cls)},
                             "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    for f in dataclasses.fields(cls):
        ns[f.name] = dataclasses.field(default=f.default, default_factory=f.default_factory, repr=f.repr,
                                       compare=f.compare)
    return dataclasses.dataclass(type(cls.__name__, (), ns))


def test_every_model_class_is_a_model_object() -> None:
    assert len(CLASSES) > 30 and all(issubclass(c, ModelObject) for c in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_init_repr_and_eq_are_those_of_a_dataclass(cls: type) -> None:
    plain = twin(cls)
    params = list(inspect.signature(plain).parameters.values())
    required = {p.name: None for p in params if p.default is inspect.Parameter.empty}
    ours, theirs = cls(**required), plain(**required)
    assert inspect.signature(cls) == inspect.signature(plain)
    assert repr(ours) == repr(theirs)
    assert ours == cls(**required) and ours != theirs and not (ours != cls(**required))
    changed = dataclasses.replace(ours, **{params[0].name: "changed"})
    assert (changed == ours) is (not dataclasses.fields(cls)[0].compare)
    with pytest.raises(TypeError, match="unhashable"):
        hash(ours)
    with pytest.raises(TypeError) as ours_error:
        cls(no_such_field=1)
    with pytest.raises(TypeError) as their_error:
        plain(no_such_field=1)
    assert str(ours_error.value) == str(their_error.value)


def test_a_recursive_reference_prints_as_dots() -> None:
    group = model.TrackGroup("g")
    group.instances = [group]  # type: ignore[list-item]
    assert "..." in repr(group)


def test_importing_the_model_writes_no_init_until_a_class_is_built() -> None:
    """The cost pinned: @dataclass would compile an __init__ per class at import; ours waits for the first use."""
    code = textwrap.dedent("""
        from pykeepalived.config import model

        classes = [c for c in vars(model).values() if isinstance(c, type) and c.__module__ == model.__name__]
        lazy = sorted(c.__name__ for c in classes if "args" in c.__init__.__code__.co_varnames)
        model.NextHop()
        print(len(lazy), "NextHop" in lazy, "args" in model.NextHop.__init__.__code__.co_varnames)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                          env=env)
    count, was_lazy, still_lazy = done.stdout.split()
    assert int(count) == len(CLASSES) and was_lazy == "True" and still_lazy == "False"
