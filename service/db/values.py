"""Values as the database and JSON take them."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> float | None:
    """A JSON-safe float: NaN/inf become None (PostgreSQL's json rejects them)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
