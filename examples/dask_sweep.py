"""A hyperparameter sweep of MLPClassifier on a Dask cluster, through scikit-learn's joblib integration.

GridSearchCV sends each (candidate, fold) fit to the cluster's workers as a joblib task;
the estimator and the data travel to the workers pickled, so every worker needs the same
nncore version. Without --scheduler the script starts a LocalCluster of 2 worker processes
with 1 thread each on this machine; with --scheduler tcp://HOST:8786 the same code runs on
a real cluster. BLAS threads: Dask's nanny starts workers with OPENBLAS_NUM_THREADS=1 (and
OMP/MKL likewise), and each fit asks for --blas-threads through MLPClassifier(n_threads=...),
so worker processes x threads per worker x BLAS threads should equal the cores. The final
refit of the best candidate on all of X runs in this process, as GridSearchCV does it.

    python examples/dask_sweep.py [--scheduler tcp://HOST:8786] [--n-samples 10000] [--max-iter 10]
"""
import argparse
import os
import sys
import time
import warnings

try:
    import joblib
    from dask.distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV
except ImportError as missing:
    sys.exit(f'dask_sweep.py needs dask.distributed and scikit-learn ({missing.name} is missing): '
             'pip install "nncore[dask]"')

import nncore
from nncore.data import FetchError

GRID = {"hidden_layer_sizes": [(64,), (256,)], "learning_rate_init": [1e-3, 3e-3]}


def blas_threads():
    """{BLAS library file: its thread count} in the calling process (run on each worker)."""
    from threadpoolctl import threadpool_info
    return {os.path.basename(pool["filepath"]): pool["num_threads"] for pool in threadpool_info()
            if pool["user_api"] == "blas"}


def stop_at_max_iter_quietly():
    """Silence "Maximum iterations reached" in this process: the sweep stops every fit at --max-iter on purpose."""
    warnings.filterwarnings("ignore", message="Stochastic Optimizer: Maximum iterations")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: start a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default: 2)")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads per fit (default: 1)")
    parser.add_argument("--n-samples", type=int, default=10_000, help="MNIST training images used (default: 10000)")
    parser.add_argument("--max-iter", type=int, default=10, help="epochs per fit (default: 10)")
    parser.add_argument("--backend", default="cython")
    return parser.parse_args()


def sweep(client, X, y, args):
    """Run the grid search on ``client``'s workers; return the fitted GridSearchCV and its seconds."""
    estimator = nncore.MLPClassifier(max_iter=args.max_iter, batch_size=128, random_state=0,
                                     n_threads=args.blas_threads, backend=args.backend)
    search = GridSearchCV(estimator, GRID, cv=3, n_jobs=-1)
    started = time.perf_counter()
    # scatter sends X and y to every worker once, instead of with each task.
    with joblib.parallel_backend("dask", scatter=[X, y]):
        search.fit(X, y)
    return search, time.perf_counter() - started


def main():
    args = parse_args()
    try:
        train, test = nncore.load_mnist("train"), nncore.load_mnist("test")
    except FetchError as error:
        sys.exit(f"dask_sweep.py: {error.headline}")
    X, y = train.images[:args.n_samples], train.labels[:args.n_samples]
    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    try:
        # Every fit ends at --max-iter epochs, on purpose: said once here, not as a ConvergenceWarning per fit.
        print(f"each fit trains exactly {args.max_iter} epochs (--max-iter): the candidates are compared at "
              "equal budgets, so scikit-learn's ConvergenceWarning is silenced")
        stop_at_max_iter_quietly()
        client.run(stop_at_max_iter_quietly)
        threads_by_worker = client.run(blas_threads)
        for address, threads in sorted(threads_by_worker.items()):
            print(f"worker {address}: BLAS threads at rest {threads}")
        search, seconds = sweep(client, X, y, args)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    for params, mean, std in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                                 search.cv_results_["std_test_score"]):
        print(f"  {params}: cv accuracy {mean:.4f} ± {std:.4f}")
    n_fits = len(search.cv_results_["params"]) * search.n_splits_
    test_accuracy = search.best_estimator_.score(test.images, test.labels)
    print(f"best {search.best_params_}: cv accuracy {search.best_score_:.4f}, test accuracy {test_accuracy:.4f}; "
          f"{n_fits} fits on {len(threads_by_worker)} workers in {seconds:.1f} s")


if __name__ == "__main__":
    main()
