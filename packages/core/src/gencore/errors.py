"""Exceptions that the command line turns into one-line messages.

Anything deriving from :class:`GencoreError` is a problem with what the user gave us (a file, a config, a
checkpoint) or a deliberate stop, never a bug; the CLI prints ``error: <message>`` and exits with ``exit_code``.
"""

from __future__ import annotations


class GencoreError(Exception):
    """Base class for errors caused by user input; ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class ConfigError(GencoreError):
    """A config file or ``--set`` override is malformed, has an unknown key or a value of the wrong type."""


class DataError(GencoreError):
    """A data file or folder is missing, unreadable, corrupt or of the wrong shape."""


class CheckpointError(GencoreError):
    """A checkpoint or pretrained directory is missing, incomplete, corrupt or refused (pickle)."""


class OutputError(GencoreError):
    """An output path holds files this command did not write, or an earlier output that needs ``--overwrite``;
    nothing was changed."""


class RunLockedError(GencoreError):
    """Another process holds the run directory's lock."""


class NonFiniteLossError(GencoreError):
    """Training produced a NaN/inf loss; parameters were not updated with it."""

    exit_code = 3
