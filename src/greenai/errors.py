"""The project's exceptions. Vendor and OS errors are translated once, at the boundary."""


class GreenAIError(Exception):
    """Base class: a problem the user can act on. The CLI prints its message on one line."""


class ConfigError(GreenAIError):
    """A configuration value is missing, malformed or out of range."""


class MeterError(GreenAIError):
    """A meter cannot be opened or read."""


class LedgerError(GreenAIError):
    """The ledger cannot be opened, is corrupt, or is not a greenai ledger."""


class CarbonDataError(GreenAIError):
    """Unknown country or region code, or a malformed intensity trace."""


class RunNotFoundError(GreenAIError):
    """No run in the ledger matches the given id or prefix."""


class ProfileError(GreenAIError):
    """A calibration profile is missing, corrupt, or was made on another machine."""


class TransformSkipped(GreenAIError):
    """An optimization transform cannot handle this model or machine; the message says why.

    A search records the reason beside the candidate and goes on with the others."""
