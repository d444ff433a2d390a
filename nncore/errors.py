"""The exceptions nncore raises, so callers can tell a bad spec from bad data from divergence."""


class SpecError(ValueError):
    """A model spec that cannot be built; ``path`` names the field, relative to the model spec."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class DataError(ValueError):
    """A dataset that is missing, corrupt or truncated."""


class DivergenceError(ArithmeticError):
    """The training loss became NaN or infinite."""


class Cancelled(Exception):
    """Training was asked to stop between iterations."""
