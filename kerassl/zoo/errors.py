"""The errors `kerassl.zoo` raises: each names the problem and the fix."""


class ZooError(ValueError):
    """Base class of every error raised by `kerassl.zoo`."""


class PresetNotFoundError(ZooError, KeyError):
    """A name that is neither a registered preset nor a known source."""

    def __str__(self):  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class NotAKerasslPresetError(ZooError):
    """A folder, repository or file that does not hold a kerassl encoder."""


class ChecksumError(ZooError):
    """A file whose SHA-256 does not match the one in `metadata.json`."""


class UnsafePresetError(ZooError):
    """A model that safe mode refuses to deserialize (e.g. a Python `Lambda`)."""


class HubAccessError(ZooError):
    """The Hub could not give what was asked: missing repo or revision, no access, offline."""


class ArchitectureMismatchError(ZooError):
    """A push that would replace a different method or architecture."""


class ConversionError(ZooError):
    """An official checkpoint that cannot be converted: unknown family, missing or misshapen weight."""


class LocalPathNotFoundError(ZooError, FileNotFoundError):
    """A source written as a local path (./dir, /abs, ~/x, model.keras) that does not exist."""
