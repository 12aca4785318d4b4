"""Domain errors: each one carries a message that tells the user what to fix."""


class TabserveError(Exception):
    """Base class for errors this package raises on purpose."""


class ConfigurationError(TabserveError):
    """`configuration.yaml` (or an override) is invalid."""


class DataError(TabserveError):
    """Training or scoring data cannot be used as it is."""


class ModelNotFoundError(TabserveError):
    """The requested model tag is not in the BentoML model store."""


class ModelIntegrityError(TabserveError):
    """A stored model's file does not match the sha256 recorded when it was saved."""
