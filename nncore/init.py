"""Weight initialisation scales: the book's fixed std, Xavier and He."""
import math

INITS = ("he", "xavier", "std")


def weight_scale(init: str, fan_in: int, init_std: float = 0.01) -> float:
    """Standard deviation of the initial weights; fan_in of a conv is C*kh*kw."""
    if init == "he":
        return math.sqrt(2.0 / fan_in)
    if init == "xavier":
        return math.sqrt(1.0 / fan_in)
    if init == "std":
        return float(init_std)
    raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
