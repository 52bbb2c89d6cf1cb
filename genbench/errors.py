"""Exceptions that the CLI turns into a one-line message and exit code 2."""


class GenbenchError(Exception):
    """Base class: a user-facing error whose message is complete on its own."""


class DataError(GenbenchError):
    """A dataset is missing, unreadable or malformed."""


class ConfigError(GenbenchError):
    """A suite, budget, override or registry name is invalid."""


class InputError(GenbenchError):
    """Files given to `genbench eval` (or similar) cannot be used."""


class CheckpointError(GenbenchError):
    """A checkpoint is missing, corrupt or belongs to another model/config."""
