"""Errors the core raises for bad input; the shell turns them into one-line messages and exit code 2."""


class InputError(ValueError):
    """A file, config, network or protocol value is wrong. The message names what and where."""
