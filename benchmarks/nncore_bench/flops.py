"""The matrix products of a training epoch, as the compiled core issues them, and their FLOPs."""
from dataclasses import dataclass


@dataclass(frozen=True)
class GemmCall:
    """One column-major BLAS call C(M, N) = op(A)(M, K) . op(B)(K, N), as the core issues it.

    Row-major products are computed as their column-major transposes (src_c/_blas.pxd):
    forward Z = A.W is gemm('n','n', fan_out, m, fan_in); dW = A^T.dZ is
    gemm('n','t', fan_out, fan_in, m); dX = dZ.W^T is gemm('t','n', fan_in, m, fan_out).
    """

    kind: str  # "forward", "dW" or "dX"
    layer: int
    trans_a: str
    trans_b: str
    M: int
    N: int
    K: int

    @property
    def flops(self):
        return 2 * self.M * self.N * self.K


def batch_gemm_calls(layer_sizes, m):
    """The gemm calls of one training step on a batch of m rows: forward, dW per layer, dX past the first."""
    calls = []
    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    for layer, (fan_in, fan_out) in enumerate(pairs):
        calls.append(GemmCall("forward", layer, "n", "n", fan_out, m, fan_in))
    for layer, (fan_in, fan_out) in reversed(list(enumerate(pairs))):
        calls.append(GemmCall("dW", layer, "n", "t", fan_out, fan_in, m))
        if layer > 0:
            calls.append(GemmCall("dX", layer, "t", "n", fan_in, m, fan_out))
    return calls


def batch_sizes_of_epoch(n_samples, batch_size):
    """{batch rows: how many batches of that size} for one epoch; the last batch may be partial."""
    batch_size = n_samples if batch_size is None else min(batch_size, n_samples)
    full, rest = divmod(n_samples, batch_size)
    counts = {batch_size: full} if full else {}
    if rest:
        counts[rest] = counts.get(rest, 0) + 1
    return counts


def epoch_gemm_calls(layer_sizes, n_samples, batch_size):
    """[(GemmCall, count)] for one training epoch, last partial batch included."""
    return [(call, count) for m, count in batch_sizes_of_epoch(n_samples, batch_size).items()
            for call in batch_gemm_calls(layer_sizes, m)]


def epoch_flops(layer_sizes, n_samples, batch_size):
    """Floating-point operations of an epoch's matrix products (2 M N K per gemm)."""
    return sum(call.flops * count for call, count in epoch_gemm_calls(layer_sizes, n_samples, batch_size))


def forward_flops(layer_sizes, n_samples):
    """Floating-point operations of the forward products over n_samples (inference)."""
    return sum(2 * n_samples * fan_in * fan_out for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]))
