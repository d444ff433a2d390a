"""Random generator state as plain integer arrays, so checkpoints need no pickle."""
import numpy as np

_MASK64 = (1 << 64) - 1


def _split128(value: int) -> np.ndarray:
    return np.array([value >> 64, value & _MASK64], dtype=np.uint64)


def _join128(parts: np.ndarray) -> int:
    hi, lo = (int(p) for p in parts)
    return (hi << 64) | lo


def rng_to_arrays(gen: np.random.Generator) -> dict[str, np.ndarray]:
    """The PCG64 state of ``gen`` as uint64 arrays."""
    st = gen.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError("only PCG64 generators can be checkpointed")
    return {
        "state": _split128(st["state"]["state"]),
        "inc": _split128(st["state"]["inc"]),
        "extra": np.array([st["has_uint32"], st["uinteger"]], dtype=np.uint64),
    }


def rng_from_arrays(d: dict[str, np.ndarray]) -> np.random.Generator:
    """A generator that continues exactly where the one saved by rng_to_arrays stopped."""
    gen = np.random.Generator(np.random.PCG64())
    gen.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": _join128(d["state"]), "inc": _join128(d["inc"])},
        "has_uint32": int(d["extra"][0]),
        "uinteger": int(d["extra"][1]),
    }
    return gen
