"""Spatial arithmetic shared by convolution, pooling and im2col."""


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length along one axis; raises ValueError when the window does not tile the input."""
    span = size + 2 * pad - kernel
    if kernel < 1 or stride < 1 or pad < 0:
        raise ValueError(f"kernel {kernel}, stride {stride} and pad {pad} must be positive (pad >= 0)")
    if span < 0:
        raise ValueError(f"window {kernel} is larger than the padded input {size + 2 * pad}")
    if span % stride:
        raise ValueError(f"window {kernel} with stride {stride} and pad {pad} does not tile an input of {size}")
    return span // stride + 1
