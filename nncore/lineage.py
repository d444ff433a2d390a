"""What a training run depended on, as plain JSON: its seeds, its data and its software.

A model is only reproducible if everything that decided its bits is written down: every seed
and the generator it feeds, the sha256 of the dataset files and of the exact train/val/test
arrays, the versions of nnq, Python and NumPy, and the BLAS library with its thread count
(OpenBLAS sums in a different order with more threads). ``run_lineage`` reads all of it off a
finished ``TrainingRun``; ``differing_conditions`` says which of it changed between two runs,
which is how a reproduction that does not match explains itself.

The seed table mirrors how ``Network``, ``TrainingRun``, ``Augmenter`` and the data loader
derive their generators; a change there must change ``RNGS`` too.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

from nncore.data.datasets import IDX_FILES, _candidate_dirs, _locate
from nncore.errors import DataError

PACKAGE = "nnq"
HASH_CHUNK = 1 << 20
GIT_TIMEOUT_S = 5.0
REPOSITORY = Path(__file__).resolve().parents[1]
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
ARRAY_NAMES = ("x_train", "t_train", "x_val", "t_val", "x_test", "t_test")
CPU_INFO = Path("/proc/cpuinfo")

# Every generator a run uses: what it decides, the spec field seeding it, how it is derived,
# and (for those a spec may leave unused) when it is used.
RNGS = (
    ("init", "train.seed", "PCG64(SeedSequence(train.seed).spawn(2)[0])", None),
    ("dropout", "train.seed", "PCG64(SeedSequence(train.seed).spawn(2)[1])", "dropout"),
    ("augment", "train.seed", "PCG64(SeedSequence(train.seed, spawn_key=(2,)))", "augment"),
    ("shuffle", "train.seed", "PCG64(train.seed)", None),
    ("validation_split", "data.seed", "PCG64(data.seed)", None),
    ("synthetic_data", "data.seed", "PCG64(data.seed)", "synthetic"),
)


def seeds(spec) -> dict:
    """The spec's seeds and every generator they feed (a parsed ``JobSpec``)."""
    values = {"train.seed": spec.train.seed, "data.seed": spec.data.seed}
    has_dropout = any(layer["type"] == "dropout" and layer.get("rate", 0) > 0
                      for layer in spec.layers)
    used = {None: True, "dropout": has_dropout, "augment": spec.train.augment.enabled,
            "synthetic": spec.data.dataset == "synthetic"}
    rngs = [{"use": use, "seed": values[field], "from": field, "generator": derivation,
             "used": used[when]} for use, field, derivation, when in RNGS]
    return {**values, "rngs": rngs}


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's C-order bytes (dtype and shape are recorded beside it)."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes as stored (gzip or raw), cached while size and mtime hold."""
    st = os.stat(path)
    return _file_sha256(os.fspath(path), st.st_size, st.st_mtime_ns)


def dataset_files(name: str, data_dir=None) -> list[dict]:
    """The files a dataset is read from, as this host finds them: ``{"name", "path",
    "sha256", "bytes"}`` each; [] for the generated ``synthetic`` set. Raises DataError when
    they are missing, like ``load_dataset``."""
    if name == "synthetic":
        return []
    paths = _locate(name, data_dir)
    return [{"name": os.path.basename(paths[key]), "path": paths[key],
             "sha256": file_sha256(paths[key]), "bytes": os.path.getsize(paths[key])}
            for key in IDX_FILES]


def current_sha256(dataset: str, names, data_dir=None) -> dict[str, str | None]:
    """sha256 of each named file of ``dataset`` where this host looks for it first (the
    directories ``load_dataset`` searches, in its order); None for a file in none of them."""
    directories = _candidate_dirs(dataset, data_dir)
    found = {}
    for name in names:
        paths = (os.path.join(d, name) for d in directories)
        path = next((p for p in paths if os.path.isfile(p)), None)
        found[name] = file_sha256(path) if path else None
    return found


def data_lineage(run, data_dir=None) -> dict:
    """The run's data section, its files and the sha256 of each array it trained and
    evaluated on."""
    dataset = run.dataset
    arrays = {name: {"sha256": array_sha256(a), "dtype": a.dtype.name, "shape": list(a.shape)}
              for name in ARRAY_NAMES for a in [getattr(dataset, name)]}
    try:
        files = dataset_files(dataset.name, data_dir)
    except DataError:  # gone since the run read them: the arrays' hashes still say it all
        files = []
    return {"dataset": dataset.name, "options": run.spec.data.options(), "files": files,
            "arrays": arrays, "fingerprint": dataset.fingerprint}


def blas() -> dict:
    """The BLAS NumPy calls, its version, CPU kernel set and thread count (threadpoolctl when
    installed, else NumPy's build configuration and the thread variables)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return _numpy_blas()
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return _numpy_blas()
    pool = next((p for p in pools if "numpy" in p.get("filepath", "")), pools[0])
    return {"library": pool.get("internal_api"), "version": pool.get("version"),
            "threads": pool.get("num_threads"), "architecture": pool.get("architecture")}


def _numpy_blas() -> dict:
    config = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    threads = next((os.environ[v] for v in BLAS_THREAD_VARIABLES if os.environ.get(v)), None)
    return {"library": config.get("name"), "version": config.get("version"),
            "threads": int(threads) if threads and threads.isdigit() else None,
            "architecture": None}


@functools.lru_cache(maxsize=1)
def git_commit() -> dict:
    """The checkout's commit and whether tracked files differ from it; Nones when the code
    does not run from a git checkout. Read once per process, which keeps running the code it
    started with; read-only: no lock is taken on the index."""
    if not (REPOSITORY / ".git").exists():
        return {"commit": None, "modified": None}
    try:
        commit = _git("rev-parse", "HEAD")
        status = _git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "modified": None}
    return {"commit": commit or None, "modified": bool(status)}


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True,
                          check=True, timeout=GIT_TIMEOUT_S).stdout.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _cpu() -> str | None:
    """The CPU model (Linux), which with the BLAS kernel set is what "the same host kind" means."""
    try:
        for line in CPU_INFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or None


def _gpu(backend: str) -> dict:
    if backend != "cupy":
        return {"cupy": None, "cuda": None}
    import cupy

    return {"cupy": cupy.__version__, "cuda": cupy.cuda.runtime.runtimeGetVersion()}


def environment(backend: str = "numpy") -> dict:
    """Software and hardware this process trains with."""
    git = git_commit()
    return {"nnq": _version(PACKAGE), "git_commit": git["commit"],
            "git_modified": git["modified"], "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas(), "backend": backend, **_gpu(backend),
            "machine": platform.machine(), "cpu": _cpu()}


def run_lineage(run, data_dir=None) -> dict:
    """Everything ``TrainingRun.from_spec`` decided a finished run by, besides its spec."""
    backend = "cupy" if run.network.backend == "cupy" else "numpy"
    return {"seeds": seeds(run.spec), "data": data_lineage(run, data_dir),
            "environment": environment(backend),
            "train_seconds": float(sum(row["seconds"] or 0.0 for row in run.metrics))}


# --- comparing two runs' conditions ---------------------------------------------------------

ENVIRONMENT_CONDITIONS = ("nnq", "git_commit", "git_modified", "python", "numpy", "backend",
                          "cupy", "cuda", "machine", "cpu")
BLAS_CONDITIONS = ("library", "version", "threads", "architecture")


def environment_summary(env: dict) -> str | None:
    """One line of what decides the bits: versions, BLAS and its threads, backend."""
    if not env:
        return None
    blas_ = env.get("blas") or {}
    return (f"nnq {env.get('nnq')}, python {env.get('python')}, numpy {env.get('numpy')}, "
            f"{blas_.get('library')} {blas_.get('version')} ({blas_.get('architecture')}, "
            f"{blas_.get('threads')} threads), {env.get('backend')} on {env.get('cpu')}")


def _files(data: dict) -> dict[str, str]:
    return {f["name"]: f["sha256"] for f in data.get("files") or []}


def _arrays(data: dict) -> dict[str, str]:
    return {name: a["sha256"] for name, a in (data.get("arrays") or {}).items()}


def differing_conditions(original: dict, reproduced: dict) -> list[dict]:
    """``{"condition", "original", "reproduced"}`` for each condition the original recorded
    (its ``environment`` and ``data`` sections) that differs in the reproduction. An imported
    or older model recorded no environment (one ``environment`` entry says so, with the
    reproduction's) and no files; its data fingerprint still counts."""
    env_a, env_b = original.get("environment"), reproduced.get("environment") or {}
    pairs = []
    if not env_a:
        pairs.append(("environment", None, environment_summary(env_b)))
    else:
        pairs += [(key, env_a.get(key), env_b.get(key)) for key in ENVIRONMENT_CONDITIONS]
        blas_a, blas_b = env_a.get("blas") or {}, env_b.get("blas") or {}
        pairs += [(f"blas.{key}", blas_a.get(key), blas_b.get(key)) for key in BLAS_CONDITIONS]
    data_a, data_b = original.get("data") or {}, reproduced.get("data") or {}
    files_a, files_b = _files(data_a), _files(data_b)
    if files_a:
        pairs += [(f"data.files.{name}", files_a.get(name), files_b.get(name))
                  for name in sorted(set(files_a) | set(files_b))]
    arrays_a, arrays_b = _arrays(data_a), _arrays(data_b)
    if arrays_a:
        pairs += [(f"data.arrays.{name}", arrays_a.get(name), arrays_b.get(name))
                  for name in ARRAY_NAMES]
    elif data_a.get("fingerprint"):
        pairs.append(("data.fingerprint", data_a["fingerprint"], data_b.get("fingerprint")))
    return [{"condition": key, "original": a, "reproduced": b} for key, a, b in pairs if a != b]
