"""Which product path (narrow kernels, BLAS, a mix) each case of a large backend contract test runs on.

``pytest`` runs each case of a test marked ``one_product_path_per_case`` on one path;
``pytest --all-product-paths`` runs every case on every path (tests/conftest.py).
"""


def runs_on_its_product_path(indices, n_paths):
    """Whether the case with these parameter indices (``product_path`` among them) runs by default.

    Each case runs on the path whose index is the sum of its other parameters' indices, modulo
    the number of paths. Along any parameter with at least that many values the paths rotate, so
    every combination of a path with the values of all the other parameters but that one runs
    (tests/test_core_contract.py checks the combinations it promises).
    """
    others = sum(index for name, index in indices.items() if name != "product_path")
    return indices["product_path"] == others % n_paths
