"""Image data: reads digits, CIFAR-10/100 and image folders (or .tar.gz archives of them) into uint8
tensors, makes the stratified train/val/test splits and the `limit` subset, and hashes the source."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import math
import os
import pickle
import posixpath
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import resample

from lrlab import store
from lrlab.config import DataConfig
from lrlab.errors import DataError, LrlabError, unknown

CIFAR_COPY = "cifar10-train.tar.gz"  # configs/cifar10-*.toml read data/<this>, a JPEG copy of CIFAR-10's train split
# training images the channel statistics are computed from (an even sample; all when fewer): held in memory or
# streamed from disk alike, so that a streamed run trains exactly as one held in memory
STATS_SAMPLE = 2048


class LazyImages:
    """Image files that behave like a uint8 [N, C, H, W] tensor: indexing decodes just those files
    (data.stream, for folders too big to hold in memory); `dataset()` serves them one by one to a
    torch DataLoader, whose workers decode in parallel."""

    def __init__(
        self, files: list[str], size: int | None, mode: str, shape: tuple[int, ...], crop: bool = False
    ) -> None:
        self.files, self.size, self.mode, self.crop = files, size, mode, crop
        self.shape = (len(files), *shape)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        picked = self.files[index] if isinstance(index, slice) else [self.files[int(i)] for i in index]
        return _decode(picked, _read_files, str, self.size, self.mode, check_memory=False, crop=self.crop)

    def part(self, start: int, stop: int) -> LazyImages:
        return LazyImages(self.files[start:stop], self.size, self.mode, self.shape[1:], self.crop)

    def dataset(self) -> torch.utils.data.Dataset:
        return _OneImage(self)


class _OneImage(torch.utils.data.Dataset):
    def __init__(self, images: LazyImages) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[slice(i, i + 1)][0]


@dataclass(frozen=True, eq=False)  # eq=False: == on tensors has no single truth value
class Split:
    images: torch.Tensor | LazyImages  # uint8, [N, C, H, W], on CPU; LazyImages when streaming
    labels: torch.Tensor  # int64, [N]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str  # as given in the config: "digits", "cifar10", "imagefolder:/path", ...
    classes: list[str]
    train: Split
    val: Split
    test: Split
    test_source: str  # "official test split" or "held out from the training pool"
    files_hash: str  # sha256 hex over the source's bytes; identifies the data
    val_given: bool = False  # the validation split is the source's own (a val/ folder), not drawn from train

    @property
    def streamed(self) -> bool:
        """Whether the images are read from disk batch by batch (data.stream), not held in memory."""
        return isinstance(self.train.images, LazyImages)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.train.images.shape[2], self.train.images.shape[3])

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and (population) std of the training images, in [0, 1] units, over an even sample of
        STATS_SAMPLE of them (all when fewer): a streamed split reads only those from disk."""
        x = self.train.images
        x = x[torch.linspace(0, len(x) - 1, min(len(x), STATS_SAMPLE)).long()]
        total = torch.zeros(x.shape[1], dtype=torch.float64)
        squares = torch.zeros_like(total)
        for chunk in x.split(4096):  # chunks: 50,000 CIFAR images as float64 would be 1.2 GB at once
            c = chunk.to(torch.float64)
            total += c.sum((0, 2, 3))
            squares += (c * c).sum((0, 2, 3))
        n = x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / n
        std = (squares / n - mean * mean).clamp(min=0).sqrt()
        return (mean / 255).tolist(), (std / 255).tolist()


DATASETS: dict[str, str] = {
    "digits": "scikit-learn's 1,797 handwritten digits, 8×8 grey, 10 classes; bundled, no download",
    "cifar10": "CIFAR-10, 32×32 RGB, 10 classes, official python format under data_dir (--download)",
    "cifar100": "CIFAR-100, 32×32 RGB, 100 fine classes, official python format under data_dir (--download)",
    "imagefolder": "imagefolder:PATH, a folder or .tar.gz with train/<class>/<image> and optional test/",
}
_NAMES = ["digits", "cifar10", "cifar100", "imagefolder:PATH"]
_OFFICIAL, _HELD_OUT = "official test split", "held out from the training pool"
# name -> (torchvision class, label key in the pickles); file names, url and md5 come from torchvision
_CIFAR = {"cifar10": ("CIFAR10", "labels"), "cifar100": ("CIFAR100", "fine_labels")}
_GREY = {"1", "L", "LA", "I", "F"}  # single-channel PIL modes (LA: grey with alpha), and I;16 in every byte order
# the archives tarfile reads (compression found from the bytes), by name ending
_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def _torchvision_cifar(name: str) -> Any:
    """torchvision's class for the CIFAR `name` (its file names, url and md5), imported when first asked for:
    importing torchvision imports TorchDynamo, 3 s on a 2-core CPU, which a command that trains nothing (report,
    schedules, a parallel study's parent) never needs; a run without torch.compile imports it anyway when it
    builds its optimizer, and saves the rest (0.7 s)."""
    from torchvision import datasets

    return getattr(datasets, _CIFAR[name][0])


def _grey(mode: str) -> bool:
    return mode in _GREY or mode.startswith("I;16")


def _parse(name: str) -> tuple[str, Path | None]:
    kind, colon, path = name.partition(":")
    if name in ("digits", "cifar10", "cifar100"):
        return name, None
    if kind == "imagefolder" and colon and path.strip():
        return kind, Path(path).expanduser()
    raise unknown("dataset", name, _NAMES)


def _ceil(x: float) -> int:
    return math.ceil(round(x, 9))  # round first so that 0.15 * 100 gives 15, not 16


def _hash_cache() -> Path | None:
    """Where source digests are remembered: $XDG_CACHE_HOME/lrlab/sha256 (default ~/.cache); None
    without a home directory."""
    try:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lrlab" / "sha256"
    except RuntimeError:  # Path.home(): no HOME and no password entry
        return None


def _hash(paths: list[Path], root: Path | None = None) -> str:
    """sha256 over the files' bytes (streamed), each preceded by its path relative to root if given.

    Reading every byte of a large image tree takes minutes at each start (and each resume), so the
    digest is remembered under a key made of each file's absolute path, size, modification time and
    inode (as DVC does): any file written, replaced, added or removed changes the key and the bytes
    are read again. The cache is an optimisation only: if it cannot be read or written, the digest
    is computed as if it were not there."""
    key = hashlib.sha256(f"{root}\0".encode())
    for p in paths:
        with _unreadable_file(p):
            st = os.stat(p)
        key.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0".encode())
    cache = _hash_cache()
    cached = cache / key.hexdigest() if cache is not None else None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        digest = cached.read_text().strip() if cached is not None else ""
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return digest
    h = hashlib.sha256()
    for p in paths:
        if root is not None:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
        with _unreadable_file(p), open(p, "rb") as f:
            while chunk := f.read(1 << 20):  # 1 MiB at a time
                h.update(chunk)
    digest = h.hexdigest()
    if cached is None:
        return digest
    with contextlib.suppress(OSError, LrlabError):  # e.g. a read-only home: no cache, same digest
        store.write_text(cached, digest + "\n")  # whole or absent, also with several processes at once
    return digest


@contextlib.contextmanager
def _unreadable_file(path: Path) -> Iterator[None]:
    """An OSError on `path` (a broken link, no permission) as a DataError naming it: every file of the data is
    read for its digest, also those that --limit leaves out and so are never decoded."""
    try:
        yield
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


# ---- splits -------------------------------------------------------------------------------------


def _hold_out(
    idx: np.ndarray, labels: np.ndarray, size: int, seed: int, where: str, part: str, classes: list[str]
) -> list[np.ndarray]:
    """Stratified split of idx into [kept, held out], each with every class of idx that has two or more
    images; size is raised to one image per class."""
    size = max(size, len(np.unique(labels[idx])))
    try:
        kept, held = train_test_split(idx, test_size=size, stratify=labels[idx], random_state=seed)
    except ValueError:  # sklearn: a class of idx has one image (the split before took the rest), or too few kept
        single = np.flatnonzero(np.bincount(labels[idx], minlength=len(classes)) == 1)
        why = f"class {classes[single[0]]!r} has 1 image left for it" if len(single) else "too few images stay"
        raise DataError(
            f"too few images in {where} to hold out {size} of {len(idx)} as the {part} split by class: {why}; "
            "lower data.val_frac or data.test_frac, or add images"
        ) from None
    held, kept = _cover(held, kept, labels, seed, spare=False)
    kept, held = _cover(kept, held, labels, seed, spare=False)
    return [kept, held]


def _subsample(idx: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    # sklearn's resample, not train_test_split: a subsample need not leave 2+ images of a class behind
    n = max(n, len(np.unique(labels[idx])))  # at least one image per class
    if n >= len(idx):
        return idx
    sample = resample(idx, replace=False, n_samples=n, stratify=labels[idx], random_state=seed)
    return _cover(sample, np.setdiff1d(idx, sample), labels, seed, spare=True)[0]


def _cover(
    part: np.ndarray, rest: np.ndarray, labels: np.ndarray, seed: int, spare: bool
) -> tuple[np.ndarray, np.ndarray]:
    """part and rest, with an image of each class that part lacks swapped in from rest (for one of part's most
    frequent class, while it has two or more). Written here because a stratified draw (sklearn's) gives each
    class its share rounded, so a small class can get none: 3 images drawn from classes of 100, 6 and 6 are
    3 of the first. Draws that hold every class are returned unchanged. spare=False takes no class's last image
    from rest."""
    missing = np.setdiff1d(np.unique(labels[rest]), labels[part])
    if len(missing) == 0:
        return part, rest
    rng, part, rest = np.random.default_rng(seed), part.copy(), rest.copy()
    for c in missing:
        counts = np.bincount(labels[part])
        donor = int(counts.argmax())
        of_c = np.flatnonzero(labels[rest] == c)
        if counts[donor] < 2:
            break
        if len(of_c) < 2 and not spare:
            continue
        i, j = rng.choice(of_c), rng.choice(np.flatnonzero(labels[part] == donor))
        part[j], rest[i] = rest[i], part[j]
    return part, rest


def _plan(
    pool: np.ndarray,
    test_labels: np.ndarray | None,
    cfg: DataConfig,
    classes: list[str],
    where: str,
    val_labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted indices of train (into the pool), val (into val_labels, or the pool) and test (into test_labels, or
    the pool). A split given (a val/ or test/ folder, an official test split) is not drawn from the pool."""
    drawn = ["train"] + ["val"] * (val_labels is None) + ["test"] * (test_labels is None)
    for part, frac in (("val", cfg.val_frac), ("test", cfg.test_frac)):
        if part in drawn and frac == 0:
            raise DataError(f"data.{part}_frac: must be above 0: {where} has no {part} split of its own to use")
    seed, need = cfg.split_seed, len(drawn)  # one image per split drawn from the pool
    for c, n in enumerate(np.bincount(pool, minlength=len(classes))):
        if 0 < n < need:
            raise DataError(f"class {classes[c]!r} in {where} has only {n} image(s); {'/'.join(drawn)} needs {need}")
    train, val_share = np.arange(len(pool)), cfg.val_frac  # shares of the pool, for the limit below
    if test_labels is None:
        train, test = _hold_out(train, pool, _ceil(cfg.test_frac * len(pool)), seed, where, "test", classes)
    if val_labels is None:
        train, val = _hold_out(train, pool, _ceil(cfg.val_frac * len(pool)), seed, where, "val", classes)
    else:  # given: under a limit it keeps its size relative to the pool
        val, val_share = np.arange(len(val_labels)), len(val_labels) / len(pool)
    train_frac = 1 - cfg.val_frac * (val_labels is None) - cfg.test_frac * (test_labels is None)
    if test_labels is None:
        test_labels, test_share = pool, cfg.test_frac
    else:  # given: under a limit it shrinks to val's size
        test, test_share = np.arange(len(test_labels)), val_share
    if cfg.limit is not None:  # val and test shrink with train, keeping their shares of the pool
        train = _subsample(train, pool, cfg.limit, seed)
        val = _subsample(val, pool if val_labels is None else val_labels, _ceil(cfg.limit * val_share / train_frac),
                         seed)  # fmt: skip
        test = _subsample(test, test_labels, _ceil(cfg.limit * test_share / train_frac), seed)
    return np.sort(train), np.sort(val), np.sort(test)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def _from_arrays(cfg: DataConfig, classes: list[str], pool: tuple, test: tuple | None, hash_: str) -> Dataset:
    """A Dataset from whole (uint8 [N, C, H, W] images, labels) arrays; test None: no test split."""
    tr, va, te = _plan(pool[1], None if test is None else test[1], cfg, classes, cfg.name)

    def split(arrays: tuple[np.ndarray, np.ndarray], i: np.ndarray) -> Split:
        x = torch.from_numpy(np.ascontiguousarray(arrays[0][i]))
        if cfg.image_size is not None and x.shape[-2:] != (cfg.image_size, cfg.image_size):
            x = torch.cat([_resize(c, cfg.image_size) for c in x.split(4096)])  # chunks bound the float copy
        return Split(x, torch.from_numpy(arrays[1][i].astype(np.int64)))

    source, test = (_HELD_OUT, pool) if test is None else (_OFFICIAL, test)
    return Dataset(cfg.name, classes, split(pool, tr), split(pool, va), split(test, te), source, hash_)


# ---- digits and CIFAR ---------------------------------------------------------------------------


def _load_digits(cfg: DataConfig) -> Dataset:
    d = load_digits()
    x = np.rint(d.images * 255 / 16).astype(np.uint8)[:, None]  # values 0..16 -> 0..255; [N, 1, 8, 8]
    y = d.target.astype(np.int64)
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    return _from_arrays(cfg, [str(c) for c in d.target_names], (x, y), None, digest)


def fetch_cifar(name: str, root: Path, url: str | None = None, md5: str | None = None) -> Path:
    """Download and extract the official python-format archive of name into root; returns its folder."""
    if name not in _CIFAR:
        raise unknown("CIFAR dataset", name, list(_CIFAR))
    from torchvision.datasets.utils import check_integrity, download_url

    tv, root = _torchvision_cifar(name), Path(root)
    url, md5, archive = url or tv.url, md5 or tv.tgz_md5, Path(root) / tv.filename
    if root.exists() and not root.is_dir():
        raise DataError(f"data.data_dir: {root} is a file; the {name} files go in a folder (--data-dir)")
    # an archive copied in by hand (a machine offline) that fails the md5: said, whatever the download then does
    bad = archive.is_file() and not check_integrity(str(archive), md5)
    why = f" ({archive} was there, but its md5 is not the official {md5}: cut short or another file)" * bad
    try:
        if url.startswith("file:"):  # torchvision's downloader fails on file:// URLs (no response length)
            root.mkdir(parents=True, exist_ok=True)
            local = Path(url2pathname(urlparse(url).path))
            if local.resolve() != archive.resolve():
                shutil.copyfile(local, archive)
            if not check_integrity(archive, md5):
                raise RuntimeError(f"the md5 of {local} is not {md5}")
        else:  # downloads (unless root holds the archive with the right md5), checks the md5
            download_url(url, str(root), filename=tv.filename, md5=md5)
        _extract(archive, root)
    except (OSError, RuntimeError, tarfile.TarError, EOFError, zlib.error) as e:  # URLError: OSError; md5: Runtime
        raise DataError(f"could not fetch {name} from {url} into {root}: {e}{why}") from None
    if missing := _cifar_missing(name, root / tv.base_folder):
        raise DataError(f"the {name} archive from {url} lacks {', '.join(missing)} (in {tv.base_folder}/)")
    return root / tv.base_folder


def _extract(archive: Path, root: Path) -> None:
    """Extract a tar archive into root, refusing members that are not plain files or folders inside root. By hand,
    not torchvision's extract_archive: that extracts every member as named (Python before 3.14 filters nothing), so
    an archive from a URL of the user's could write anywhere ("../x", links)."""
    with tarfile.open(archive, "r:*") as tar:
        members, inside = tar.getmembers(), root.resolve()
        for m in members:
            if not (m.isfile() or m.isdir()) or not (root / m.name).resolve().is_relative_to(inside):
                raise DataError(f"{archive}: member {m.name!r} is not a plain file or folder inside {root}; refused")
        tar.extractall(root, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


def _cifar_names(name: str) -> tuple[list[str], str, str]:
    """The official python-format CIFAR's train files, test file and meta file."""
    tv = _torchvision_cifar(name)
    return [f for f, _ in tv.train_list], tv.test_list[0][0], tv.meta["filename"]


def _cifar_missing(name: str, folder: Path) -> list[str]:
    """The files of the official python-format CIFAR that `folder` lacks."""
    train, test, meta = _cifar_names(name)
    return [f for f in [*train, test, meta] if not (folder / f).is_file()]


def _cifar_files(cfg: DataConfig) -> tuple[Path, list[str], str, str]:
    """The CIFAR folder and its train files, test file and meta file; DataError if any is missing."""
    folder = Path(cfg.data_dir) / _torchvision_cifar(cfg.name).base_folder
    train, test, meta = _cifar_names(cfg.name)
    if missing := _cifar_missing(cfg.name, folder):
        what = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        archive = Path(cfg.data_dir) / _torchvision_cifar(cfg.name).filename
        fix = (f"{archive} is there: --download (data.download = true) checks its md5 and extracts it, with no "
               "download" if archive.is_file() else "--download (data.download = true) fetches them")  # fmt: skip
        raise DataError(
            f"{cfg.name}: {folder} {what}; expected the official python-format files there "
            f"({', '.join([*train, test, meta])}); {fix}"
        )
    return folder, train, test, meta


def _unpickle(path: Path, keys: list[str]) -> dict:
    # By hand: torchvision's CIFAR classes insist on the official md5 of every file. latin1, as in
    # torchvision: the official pickles come from Python 2. Like torchvision, this trusts the files.
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f, encoding="latin1")
        d = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    except Exception as e:  # a corrupt pickle can raise almost anything
        raise DataError(
            f"cannot read {path}: {type(e).__name__}: {e} (a damaged copy: remove {path.parent} and --download "
            "fetches it again)"
        ) from None
    for k in keys:
        if k not in d:
            raise DataError(f"{path} has no key {k!r} (it has {', '.join(map(repr, d))})")
    return d


def _load_cifar(cfg: DataConfig) -> Dataset:
    if cfg.download:
        try:
            _cifar_files(cfg)
        except DataError:
            fetch_cifar(cfg.name, Path(cfg.data_dir))
    folder, train, test, meta = _cifar_files(cfg)
    label_key, names_key = _CIFAR[cfg.name][1], _torchvision_cifar(cfg.name).meta["key"]
    names = _unpickle(folder / meta, [names_key])[names_key]
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            d = _unpickle(folder / f, ["data", label_key])
            x, y = np.asarray(d["data"], dtype=np.uint8), np.asarray(d[label_key], dtype=np.int64)
            ok = x.ndim == 2 and x.shape[1] == 3 * 32 * 32 and len(x) == len(y)
            if not ok or np.any((y < 0) | (y >= len(classes))):
                raise DataError(f"{folder / f}: expected N×3072 uint8 'data', N labels below {len(classes)}")
            xs.append(x.reshape(-1, 3, 32, 32))  # each row is channel-major: 1024 red, green, then blue
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    digest = _hash([folder / f for f in sorted([*train, test, meta])], folder)
    return _from_arrays(cfg, classes, read(train), read([test]), digest)


# ---- image folders and archives -----------------------------------------------------------------


_Tree = dict[tuple[str, ...], str]  # path parts -> the file's path on disk, or its member name in the archive


def _list_dir(path: Path) -> tuple[_Tree, set[tuple[str, ...]]]:
    """The files and folders under path (following links, as torchvision's make_dataset does). A link to a
    folder that holds it is refused: os.walk follows it until the path grows too long, listing each image
    once per turn, under the class folder the link sits in."""
    files, dirs = {}, set()
    for root, dnames, fnames in os.walk(path, followlinks=True):
        here = os.path.realpath(root)
        for d in dnames:
            if os.path.islink(link := os.path.join(root, d)):
                to = os.path.realpath(link)
                if here == to or here.startswith(to.rstrip(os.sep) + os.sep):
                    raise DataError(f"{link} links to {to}, a folder that holds it: the listing would never end")
        rel = Path(root).relative_to(path).parts
        dirs.update((*rel, d) for d in dnames)
        files.update({(*rel, f): os.path.join(root, f) for f in fnames})
    return files, dirs


def _list_tar(tar: tarfile.TarFile) -> tuple[_Tree, set[tuple[str, ...]]]:
    files, dirs = {}, set()
    for m in tar.getmembers():
        parts = tuple(p for p in m.name.split("/") if p not in ("", "."))  # "./train/x" is "train/x"
        if m.issym() and not any(p.startswith(".") for p in parts):
            # a folder's listing follows links, an archive holds the link only (what it points at may not be in
            # it): refused, not skipped, so that the two never give different classes or images
            raise DataError(
                f"{tar.name}: member {m.name} is a symbolic link (to {m.linkname}); pack the folder with "
                "tar --dereference (-h) to store what links point at"
            )
        if m.isfile() or m.islnk():  # a hard link reads as the file it links (tarfile.extractfile)
            files[parts] = m.name
            dirs.update(parts[:i] for i in range(1, len(parts)))
        elif m.isdir() and parts:
            dirs.add(parts)
    return files, dirs


# the names a validation folder of an image folder may have (Kaggle's trees name it valid/)
VAL_FOLDERS = ("val", "valid", "validation")


def _index(
    files: _Tree, dirs: set[tuple[str, ...]], shown: Callable[[str], str]
) -> tuple[list[str], list, list | None, list | None]:
    """Classes, and the train, val and test items (None: no val/ (or VAL_FOLDERS) or test/ folder) as (file, label), in
    torchvision's ImageFolder order. By hand, not torchvision's find_classes/make_dataset: those read only from disk,
    and one listing code for folders and archives gives both the same classes, order and errors. Unlike
    ImageFolder it skips hidden names (a Jupyter .ipynb_checkpoints folder is not a class, a macOS ._x.png
    is not an image)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    files = {p: f for p, f in files.items() if not any(q.startswith(".") for q in p)}
    dirs = {d for d in dirs if not any(q.startswith(".") for q in d)}
    tops = {p[0] for p in dirs}
    prefix = () if ("train",) in dirs or len(tops) != 1 else tuple(tops)  # may sit under one folder
    if (*prefix, "train") not in dirs:
        raise DataError(f"no train/ folder in {shown('')}; expected the layout {shown('train/<class>/<image>')}")
    k = len(prefix)

    def folders(name: str) -> list[str]:
        return sorted(d[k + 1] for d in dirs if len(d) == k + 2 and d[: k + 1] == (*prefix, name))

    to_idx = {c: i for i, c in enumerate(folders("train"))}  # train's class folders name the classes
    if len(to_idx) == 1:  # every prediction right, a loss of 0: a study would rank nothing
        raise DataError(f"one class folder in {shown('train')} ({next(iter(to_idx))}); a classifier needs at least two")

    def part(name: str) -> list[tuple[str, int]]:
        if not folders(name):
            # (a Kaggle test/ of unlabelled images: nothing there can be scored)
            unlabelled = "; images without labels cannot be scored: move that folder out of the tree" * (
                name != "train" and any(len(p) == k + 2 and p[: k + 1] == (*prefix, name) for p in files)
            )
            raise DataError(
                f"no class folders in {shown(name)}; expected {shown(name + '/<class>/<image>')}{unlabelled}"
            )
        for c in folders(name):
            if c not in to_idx:
                raise DataError(f"class folder {shown(f'{name}/{c}')} is not a class of train/")
        listed = [p for p in files if len(p) > k + 2 and p[: k + 1] == (*prefix, name)]
        images = [p for p in listed if has_file_allowed_extension(p[-1], IMG_EXTENSIONS)]
        items = [(files[p], to_idx[p[k + 1]]) for p in images]
        if not items:
            raise DataError(f"no images in {shown(name)} (image extensions: {' '.join(IMG_EXTENSIONS)})")
        have = {label for _, label in items}
        for c in folders(name):
            if to_idx[c] not in have:
                other = sum(p[k + 1] == c for p in listed)  # files of other kinds (.gif, .txt...): skipped, said
                why = f" ({other} other file{'s' * (other != 1)}: image extensions are {' '.join(IMG_EXTENSIONS)})"
                raise DataError(f"class folder {shown(f'{name}/{c}')} has no images{why * bool(other)}")
        return sorted(items, key=lambda t: (t[1], *posixpath.split(t[0])))  # by class, folder, file name

    vals = [name for name in VAL_FOLDERS if (*prefix, name) in dirs]
    if len(vals) > 1:
        raise DataError(f"{', '.join(shown(v) for v in vals)}: each is a validation folder; keep one")
    given = [part(name) if name and (*prefix, name) in dirs else None for name in (next(iter(vals), None), "test")]
    return list(to_idx), part("train"), *given


def _read_files(names: list[str]) -> Iterator[tuple[str, bytes]]:
    """Each file's bytes, one at a time, in the order given."""
    for n in names:
        try:
            yield n, Path(n).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read image {e.filename}: {e.strerror or e}") from None


def _decode(
    names: list[str],
    read: Callable[[list[str]], Iterable[tuple[str, bytes]]],
    shown: Callable[[str], str],
    size: int | None,
    mode: str | None = None,
    check_memory: bool = True,
    crop: bool = False,
) -> torch.Tensor:
    """uint8 [N, C, H, W] from the named files, which `read` gives one by one (name, bytes) in an order of its own
    (an archive's); C = 1 if every image is single-channel, else 3 (or as `mode` says: "L" or "RGB"). One file
    and one image at a time, into the output: only one is ever held at its own size (decoding all first took 3 MB
    per 1024×1024 photo, whatever data.image_size; reading every file's bytes first, as much again as the files)."""
    current = mode or "L"  # without a mode: grey until a colour image comes
    out: np.ndarray | None = None
    sizes: dict[tuple[int, int], str] = {}
    at: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        at.setdefault(name, []).append(i)
    for name, data in read(list(at)):
        with _readable(name, shown):
            im = Image.open(io.BytesIO(data))
            im.load()
        if mode is None and current == "L" and not _grey(im.mode):
            current = "RGB"
            if out is not None:  # the grey ones so far in colour, as PIL converts L to RGB: the grey in each channel
                if check_memory:
                    _check_memory(out.shape[0] * 3 * out[0, 0].size, len(names), out.shape[2:], 3)
                out = np.repeat(out, 3, axis=1)
        im = _convert(im, current)
        if size is not None and im.size != (size, size):
            im = _fitted(im, size, crop)
        sizes.setdefault(im.size, name)
        _one_size(sizes, shown)
        a = np.asarray(im)
        a = a[None] if current == "L" else a.transpose(2, 0, 1)
        if out is None:
            if check_memory:  # (not for a streamed split's batch)
                _check_memory(len(names) * a.size, len(names), a.shape[1:], a.shape[0])
            out = np.empty((len(names), *a.shape), np.uint8)
        out[at[name]] = a
    if out is None:
        return torch.empty(0, 1 if current == "L" else 3, size or 0, size or 0, dtype=torch.uint8)
    return torch.from_numpy(out)


def available_memory() -> int | None:
    """Bytes of memory this process can still take (Linux: MemAvailable and free swap, within the memory limit of
    its cgroup, a container's), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            kib = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f if ":" in line)}
        free = (kib["MemAvailable"] + kib.get("SwapFree", 0)) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None
    try:  # cgroup v2: the container's limit and what it uses already ("max": no limit)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            free = min(free, int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return max(0, free)


def _check_memory(need: int, n: int, hw: tuple[int, ...], channels: int) -> None:
    """Refuse to hold `n` images of `hw` × `channels` (`need` bytes) where the machine has less memory free: numpy
    raised a bare allocation error (or the kernel killed the process later, without a word)."""
    free = available_memory()
    if free is None or need <= free:
        return
    gib = 2**30
    raise DataError(
        f"holding the {n:,} chosen images at {hw[0]}×{hw[1]}×{channels} in memory needs {need / gib:.1f} GiB, more "
        f"than the {free / gib:.1f} GiB free here; stream them from the folder instead (--stream; an "
        "archive extracted first), or choose a smaller data.image_size or fewer images (data.limit)"
    )


@contextlib.contextmanager
def _readable(name: str, shown: Callable[[str], str]) -> Iterator[None]:
    """Turns PIL's failures on a file into a DataError naming it."""
    try:
        yield
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        why = "not an image PIL can read" if isinstance(e, UnidentifiedImageError) else str(e)
        raise DataError(f"cannot read image {shown(name)}: {why} (remove or replace the file)") from None


def _fitted(im: Image.Image, size: int, crop: bool) -> Image.Image:
    """`im` resized to size×size: stretched, or with `crop` (data.crop_to_aspect_ratio) its shorter side resized to
    `size` and the centred square cut out, so that its aspect ratio is kept: torchvision's Resize(size) then
    CenterCrop(size) on a PIL image, to the pixel (the name is Keras's, whose option cuts the centre first, then
    resizes). PIL's bilinear filter covers the footprint (antialias)."""
    if not crop:
        return im.resize((size, size), Image.BILINEAR)
    w, h = im.size  # the longer side as torchvision's Resize cuts it: int(size · long / short)
    im = im.resize((size, max(size, int(size * h / w))) if w <= h else (max(size, int(size * w / h)), size),
                   Image.BILINEAR)  # fmt: skip
    left, top = round((im.width - size) / 2), round((im.height - size) / 2)  # as CenterCrop rounds
    return im.crop((left, top, left + size, top + size))


def _one_size(sizes: dict[tuple[int, int], str], shown: Callable[[str], str]) -> None:
    """`sizes` maps each (width, height) met to a file of that size; said as height×width, as the study's header
    gives the input size."""
    if len(sizes) > 1:
        (a, fa), (b, fb) = list(sizes.items())[:2]
        side = min(*a, *b)  # a square no larger than either image: none is enlarged
        eg = f"{side}" if side <= 64 else f"{min(side, 224)} (or 64 for a small, fast model)"
        raise DataError(
            f"images differ in size (height×width {a[1]}×{a[0]} in {shown(fa)}, {b[1]}×{b[0]} in {shown(fb)}); "
            "set data.image_size to resize them all to one square size, e.g. "
            f"--set data.image_size={eg} (stretched; data.crop_to_aspect_ratio = true keeps their aspect ratio, "
            "cropping the centre)"
        )


def _convert(im: Image.Image, mode: str) -> Image.Image:
    """`im` in mode L or RGB. Grey deeper than 8 bits (PIL's I;16, and I: 16-bit PNGs in older Pillow, 32-bit
    TIFFs) is read as 16-bit and keeps bits 8 to 15, whatever an image's own values (a dark frame stays dark):
    PIL's own conversion clips every value above 255 to white."""
    if im.mode.startswith("I;16") or im.mode == "I":
        im = Image.fromarray((np.asarray(im).astype(np.int64).clip(0, 65535) >> 8).astype(np.uint8), "L")
    return im if im.mode == mode else im.convert(mode)


def _headers(names: list[str], shown: Callable[[str], str], size: int | None) -> tuple[str, tuple[int, int, int]]:
    """The mode ("L" or "RGB") and [C, H, W] that decoding every file would give, from their headers
    alone (PIL reads pixels only when asked): a streamed split is checked like one held in memory."""
    modes, sizes = set(), {}
    for name in names:
        with _readable(name, shown), Image.open(name) as im:
            modes.add(im.mode)
            sizes.setdefault(im.size, name)
    if size is None:
        _one_size(sizes, shown)
    w, h = (size, size) if size is not None else next(iter(sizes))
    mode = "L" if all(_grey(m) for m in modes) else "RGB"
    return mode, (1 if mode == "L" else 3, h, w)


@contextlib.contextmanager
def _folder(path: Path) -> Iterator[tuple[list[str], list, list | None, list | None, Callable, Callable, Callable]]:
    """Index an image folder or archive: (classes, train, val, test, read, modes, shown); read(names) gives
    (name, bytes) one file at a time, modes(names) the files' PIL modes one by one from their headers, and
    shown(name) names a file for messages."""
    if not path.exists():
        # the bundled CIFAR-10 configs name the project's development copy, which is not distributed
        hint = "; lrlab does not ship it: --data cifar10 --download fetches CIFAR-10" if path.name == CIFAR_COPY else ""
        where = "" if path.is_absolute() else f" (from the current folder, {Path.cwd()})"
        raise DataError(
            f"{path} does not exist{where}; expected a folder or .tar.gz holding train/<class>/<image>{hint}"
        )
    if path.is_dir():

        def modes(names: list[str]) -> Iterator[str]:
            for n in names:
                with _readable(n, str), Image.open(n) as im:  # the header only: PIL reads pixels when asked
                    yield im.mode

        yield (*_index(*_list_dir(path), lambda rel: str(path / rel)), _read_files, modes, str)
        return
    if not path.name.lower().endswith(_ARCHIVES):
        raise DataError(f"{path} is neither a folder nor a tar archive ({', '.join(_ARCHIVES)})")
    try:
        with tarfile.open(path, "r:*") as tar:
            files, dirs = _list_tar(tar)
            shown = lambda n: f"{n} in {path}" if n else str(path)  # noqa: E731
            members = {m.name: m for m in tar.getmembers()}  # cached by the listing: no second pass

            def read(names: list[str]) -> Iterator[tuple[str, bytes]]:
                # in archive order: a gzip stream seeks forward cheaply but back only by starting over
                for n in sorted(names, key=lambda n: members[n].offset):
                    yield n, tar.extractfile(members[n]).read()

            def modes(names: list[str]) -> Iterator[str]:  # streamed: an archive's images need not fit in memory
                for n in sorted(names, key=lambda n: members[n].offset):
                    with _readable(n, shown), Image.open(tar.extractfile(members[n])) as im:
                        yield im.mode

            yield (*_index(files, dirs, shown), read, modes, shown)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:  # a truncated or corrupt archive
        why = str(e).splitlines()[0].rstrip(":")  # "r:*" lists a try per compression, one line each
        raise DataError(f"cannot read {path}: {why} (expected a tar archive, plain or compressed)") from None


def _load_folder(cfg: DataConfig, path: Path) -> Dataset:
    if cfg.stream and not path.is_dir():
        raise DataError(f"data.stream reads images from a folder; extract {path} first (tar -xzf) and point at it")
    with _folder(path) as (classes, train, val, test, read, modes, shown):
        pool, val_labels, test_labels = (None if items is None else np.array([t[1] for t in items], dtype=np.int64)
                                         for items in (train, val, test))  # fmt: skip
        tr, va, te = _plan(pool, test_labels, cfg, classes, str(path), val_labels)
        # decode only the chosen images: a limit of 500 of 50,000 JPEGs then loads in about a second
        chosen = [[train[i] for i in tr], [(val or train)[i] for i in va], [(test or train)[i] for i in te]]
        names = [name for split in chosen for name, _ in split]
        listed = [name for name, _ in train + (val or []) + (test or [])]  # every image of the source

        # grey or colour is the data's, not the chosen images': a grey pick of a tree with colour images (a
        # --limit, another split_seed) is decoded in colour too, so the model's input stays the same
        def colour_elsewhere() -> bool:
            picked = set(names)
            return any(not _grey(m) for m in modes([n for n in listed if n not in picked]))  # to the first colour

        if cfg.stream:  # every file's header now (size, channels, unreadable files), pixels batch by batch
            mode, shape = _headers(names, shown, cfg.image_size)
            if mode == "L" and colour_elsewhere():
                mode, shape = "RGB", (3, *shape[1:])
            x = LazyImages(names, cfg.image_size, mode, shape, cfg.crop_to_aspect_ratio)
        else:
            crop = cfg.crop_to_aspect_ratio
            x = _decode(names, read, shown, cfg.image_size, crop=crop)
            if x.shape[1] == 1 and colour_elsewhere():  # (decoded again, in colour: rare, and no bytes held)
                x = _decode(names, read, shown, cfg.image_size, "RGB", crop=crop)
    if path.is_file():
        digest = _hash([path])  # the archive's bytes: the same as `sha256sum archive`
    else:
        digest = _hash(sorted(Path(n) for n in listed), path)
    splits, start = [], 0
    for split in chosen:
        labels = torch.tensor([lb for _, lb in split], dtype=torch.int64)
        end = start + len(split)
        splits.append(Split(x.part(start, end) if isinstance(x, LazyImages) else x[start:end], labels))
        start = end
    return Dataset(cfg.name, classes, *splits, _HELD_OUT if test is None else _OFFICIAL, digest, val is not None)


# ---- entry points -------------------------------------------------------------------------------


def check_out(cfg: DataConfig, out: Path) -> None:
    """Refuse an output folder in an image folder (imagefolder:PATH) or the folder itself: its runs and plots
    would lie among the images, and the next start would read them as classes or splits."""
    path = _parse(cfg.name)[1]
    if path is None or not path.is_dir():
        return
    root, target = path.resolve(), out.resolve()
    if target == root or root in target.parents:
        raise DataError(
            f"the output folder {out} is in the image folder {path} (data.name), where its runs and plots would be "
            "read as images by the next start; choose an output folder outside it (--out)"
        )


def unread(cfg: DataConfig, ds: Dataset | None = None) -> list[str]:
    """Notes on the data keys set away from their defaults that cfg's source does not read (--download on the
    bundled digits, say), each saying why, so that a setting expected to act is not ignored in silence; with the
    loaded dataset `ds`, also the split fractions of splits that the source gives."""
    default = DataConfig()
    kind, path = _parse(cfg.name)
    notes = []
    if ds is not None:
        for part, given in (("val", ds.val_given), ("test", ds.test_source == _OFFICIAL)):
            if given and getattr(cfg, f"{part}_frac") != getattr(default, f"{part}_frac"):
                what = "the official test split" if kind in _CIFAR else f"the {part} split of its own"
                notes.append(f"data.{part}_frac not read: {cfg.name} has {what}, used as it is")
    fetched = [f"data.{k}" for k in ("download", "data_dir") if getattr(cfg, k) != getattr(default, k)]
    if kind not in _CIFAR and fetched:
        source = "the digits come with scikit-learn" if path is None else f"an image folder is read from {path}"
        notes.append(f"{' and '.join(fetched)} not read: {source} (they place and fetch cifar10 and cifar100)")
    if path is None and cfg.stream:
        notes.append(f"data.stream not read: {cfg.name} is held in memory (image folders are streamed)")
    if cfg.crop_to_aspect_ratio and (cfg.image_size is None or path is None):
        why = "without data.image_size no image is resized" if cfg.image_size is None else f"{kind}'s images are square"
        notes.append(f"data.crop_to_aspect_ratio not read: {why}")
    if not (path is not None and cfg.stream) and cfg.loader_workers != default.loader_workers:
        notes.append("data.loader_workers not read: its processes decode the images of a streamed image folder")
    return notes


def check_name(cfg: DataConfig) -> None:
    """Refuse a data.name that names no kind of source (without looking at the data)."""
    _parse(cfg.name)


def check_source(cfg: DataConfig) -> None:
    """Cheap checks that cfg names a readable source (file listings only, no decoding)."""
    path = _parse(cfg.name)[1]
    if path is not None:
        with _folder(path):
            pass
    elif cfg.name in _CIFAR and not cfg.download:
        _cifar_files(cfg)


def load_data(cfg: DataConfig) -> Dataset:
    """The dataset cfg names, split into train/val/test; the same cfg gives the same splits."""
    path = _parse(cfg.name)[1]
    if path is not None:
        return _load_folder(cfg, path)
    return _load_digits(cfg) if cfg.name == "digits" else _load_cifar(cfg)
