"""Errors of the field side."""

from __future__ import annotations

from controller.errors import InputError


class FieldError(InputError):
    """A field device could not be read or commanded: the message is one line naming the device, the unit and
    the cause. It is an :class:`InputError` (bad data from outside), so the shell prints it without a traceback."""
