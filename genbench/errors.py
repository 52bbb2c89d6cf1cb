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


class WriteError(GenbenchError, OSError):
    """A file could not be written (disk full, read-only, no permission); files written before are intact.

    An ``OSError`` too, with ``errno``, ``strerror`` and ``filename``, so callers that
    handle write failures as ``OSError`` keep working.
    """

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"
