"""The exceptions nncore raises, so callers can tell a bad spec from bad data from divergence."""


class SpecError(ValueError):
    """A spec that cannot be built; ``problems`` are (dotted path, message) pairs.

    ``path`` and ``message`` are the first problem's, for callers that show one line.
    """

    def __init__(self, path_or_problems, message: str | None = None):
        if isinstance(path_or_problems, str):
            problems = [(path_or_problems, message or "")]
        else:
            problems = [(str(path), str(msg)) for path, msg in path_or_problems]
        self.problems = problems
        self.path, self.message = problems[0]
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in problems))

    def under(self, prefix: str) -> "SpecError":
        """The same problems with their paths nested under ``prefix`` (e.g. ``model``)."""
        return SpecError([(join_path(prefix, path), msg) for path, msg in self.problems])


def join_path(prefix: str, path: str) -> str:
    """``model`` + ``layers[2].size`` -> ``model.layers[2].size``; list indexes attach directly."""
    if not prefix or not path:
        return prefix or path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


class DataError(ValueError):
    """A dataset that is missing, corrupt or truncated."""


class DivergenceError(ArithmeticError):
    """The training loss became NaN or infinite."""


class Cancelled(Exception):
    """Training was asked to stop between iterations."""
