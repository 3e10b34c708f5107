"""Where the narrow-layer kernels stop beating BLAS: per product, CPU seconds of the narrow
kernel (W packed per call, as once per optimizer step) over what the core does with BLAS
(gather, gemm, the fused element-wise kernel), for layer widths n around the crossover.

    python benchmarks/narrow_crossover.py [--rows 32,1024] [--widths 8,10,16,24,32,40,48,64]

Ratios below 1 mean the narrow kernel is faster. Candidates take turns (interleaved), the
median of the rounds is printed; CPU time, so other processes on a busy machine do not count.
The compiled core uses the narrow kernels for layers with fan_out <= nncore._core.NARROW_MAX_WIDTH.
"""
import argparse
import statistics

from nncore import _testing

OPS = {"forward": 784, "weight_grad": 784, "input_grad": 128}  # K of the product as in 784-n-10 / 784-128-n


def median_cpu(op, impl, dtype, rows, K, width, from_u8, rounds, target_seconds=0.02):
    flops = 2.0 * rows * K * width
    repeats = max(1, int(target_seconds * 20e9 / flops))
    return statistics.median(_testing.time_narrow(op, impl, dtype, rows, K, width, repeats, from_u8=from_u8)[1]
                             for _ in range(rounds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="32,1024")
    parser.add_argument("--widths", default="8,10,16,24,32,40,48,64")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"narrow kernels: {_testing.narrow_isa()}")
    print("| dtype | op | uint8 rows | rows | K | " + " | ".join(f"n={w}" for w in args.widths.split(",")) + " |")
    print("|---|---|---|---|---|" + "---|" * len(args.widths.split(",")))
    for dtype in ("float32", "float64"):
        for op, K in OPS.items():
            for from_u8 in ((True, False) if op != "input_grad" else (False,)):
                for rows in (int(r) for r in args.rows.split(",")):
                    cells = []
                    for width in (int(w) for w in args.widths.split(",")):
                        narrow = median_cpu(op, "narrow", dtype, rows, K, width, from_u8, args.rounds)
                        blas = median_cpu(op, "blas", dtype, rows, K, width, from_u8, args.rounds)
                        cells.append(f"{narrow / blas:.2f}")
                    print(f"| {dtype} | {op} | {from_u8} | {rows} | {K} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
