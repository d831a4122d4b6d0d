"""User-facing errors.

Anything a user can cause (a bad file, a bad config key, a missing checkpoint) raises a ``SeqlabError`` whose
message is one line naming the file/line/key.  The CLI prints it as ``seqlab: error: <message>`` and exits 2,
without a traceback.  Programming errors stay ordinary exceptions.
"""


class SeqlabError(Exception):
    """Base class: a one-line, user-facing message."""


class DataError(SeqlabError):
    """A data file is missing, empty, misaligned or badly encoded: ``path:line: what is wrong``."""


class ConfigError(SeqlabError):
    """A config key is unknown, or a value has the wrong type or range: ``key: what is wrong``."""


class CheckpointError(SeqlabError):
    """A model directory has no checkpoint, a corrupted one, or one that does not match the config."""
