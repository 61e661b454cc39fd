"""Policies by name, as chosen on the command line (``--controller NAME``).

The core registers only its own classical policies. Others (the learned policy, SUMO's own reference
controllers) are registered by the rooms that own them with :func:`register`, at start-up of the shell,
never on import of the core.

>>> make_policy("fixed").name
'fixed'
>>> make_policy("nonsense")
Traceback (most recent call last):
...
controller.errors.InputError: unknown controller 'nonsense'; choose from: actuated, fixed, maxpressure, maxpressure-spillback, maxpressure-varaiya, webster
"""

from __future__ import annotations

from typing import Any

from controller.errors import InputError
from controller.policies.actuated import ActuatedPolicy
from controller.policies.base import Policy
from controller.policies.fixed_time import FixedTimePolicy, WebsterPolicy
from controller.policies.max_pressure import MaxPressurePolicy, SpillbackMaxPressurePolicy, VaraiyaMaxPressurePolicy

#: Policy classes by command-line name.
POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (FixedTimePolicy, WebsterPolicy, ActuatedPolicy, MaxPressurePolicy,
                              VaraiyaMaxPressurePolicy, SpillbackMaxPressurePolicy)
}


def register(name: str, cls: type[Policy]) -> None:
    """Make ``cls`` available as ``name``. Registering the same class twice is harmless.

    :param name: command-line name.
    :param cls: a :class:`Policy` subclass, constructed by :func:`make_policy` with keyword arguments.
    :raises ValueError: if ``name`` already belongs to a different class, or ``cls`` is not a Policy.
    """
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise ValueError(f"cannot register {cls!r} as controller {name!r}: not a Policy subclass")
    if not name:
        raise ValueError("a controller name must not be empty")
    known = POLICIES.get(name)
    if known is not None and known is not cls:
        raise ValueError(f"controller name {name!r} is already taken by {known.__module__}.{known.__qualname__}")
    POLICIES[name] = cls


def make_policy(name: str, **kwargs: Any) -> Policy:
    """A new policy instance by name (call ``reset`` before use, as the controller does).

    :param name: a registered name (see :data:`POLICIES`).
    :param kwargs: constructor parameters of that policy.
    :raises InputError: for an unknown name, listing the known ones.
    """
    cls = POLICIES.get(name)
    if cls is None:
        raise InputError(f"unknown controller {name!r}; choose from: {', '.join(sorted(POLICIES))}")
    return cls(**kwargs)
