"""The data catalogue: where the data directory is found, checksum-verified downloads (from local file:// URLs),
the real corpora in ../shared/data (skipped when it is absent) and the bundled Tatoeba sample."""

import gzip
import hashlib
import io
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from seqlab.data import datasets
from seqlab.data.datasets import (DATASETS, DataFile, DatasetInfo, download, download_file, load_parallel, require,
                                  resolve_data_dir, seeded_order)
from seqlab.errors import ConfigError, DataError

DATA_DIR = resolve_data_dir()
needs_data = pytest.mark.skipif(not (DATA_DIR / "multi30k").is_dir(),
                                reason=f"shared data directory not found at {DATA_DIR} (set SEQLAB_DATA)")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------------ resolve_data_dir
def test_explicit_beats_environment_beats_search(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "from_env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert resolve_data_dir() == tmp_path / "from_env"  # used even before it exists (download creates it)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SEQLAB_DATA", "~/data")
    assert resolve_data_dir() == tmp_path / "data"


def test_search_order_without_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SEQLAB_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # a fake package location, so that the repository candidate is under tmp_path too
    monkeypatch.setattr(datasets, "__file__", str(tmp_path / "install" / "repo" / "seqlab" / "data" / "datasets.py"))
    work = tmp_path / "work" / "checkout"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    cache = tmp_path / "home" / ".cache" / "seqlab" / "data"
    assert resolve_data_dir() == cache  # nothing exists: the download location

    (tmp_path / "install" / "shared" / "data").mkdir(parents=True)
    assert resolve_data_dir() == tmp_path / "install" / "shared" / "data"  # <repository>/../shared/data
    (work / "shared" / "data").mkdir(parents=True)
    assert resolve_data_dir() == work / "shared" / "data"  # <cwd>/shared/data
    (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
    assert resolve_data_dir() == tmp_path / "work" / "shared" / "data"  # <cwd>/../shared/data comes first


def test_require_names_the_dataset_and_the_directory(tmp_path):
    with pytest.raises(DataError, match=f"dataset 'ptb' not found under {tmp_path}"):
        require("ptb", tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset 'ptbb'"):
        require("ptbb", tmp_path)


# ------------------------------------------------------------------------------------------------ download
CONTENT = "Go.\tVa !\nHi.\tSalut !\n".encode("utf-8")


def served(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "upstream" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def test_download_verifies_the_content_and_stores_it_gzipped(tmp_path):
    entry = DataFile("toy/fra.txt.gz", sha256="0" * 64, content_sha256=sha256(CONTENT),
                     url=served(tmp_path, "fra.txt", CONTENT))
    target = download_file(entry, tmp_path / "data")
    assert target == tmp_path / "data" / "toy" / "fra.txt.gz"
    assert gzip.decompress(target.read_bytes()) == CONTENT


def test_download_keeps_a_file_that_is_already_the_stored_bytes(tmp_path):
    stored = gzip.compress(CONTENT, mtime=0)  # e.g. Multi30k's raw/*.gz, served as they are stored
    entry = DataFile("toy/fra.txt.gz", sha256=sha256(stored), content_sha256=None, url=served(tmp_path, "a.gz", stored))
    assert download_file(entry, tmp_path / "data").read_bytes() == stored


def test_a_corrupted_download_is_refused_and_leaves_nothing(tmp_path):
    corrupted = CONTENT.replace(b"Salut", b"Salud")
    entry = DataFile("toy/fra.txt.gz", sha256="0" * 64, content_sha256=sha256(CONTENT),
                     url=served(tmp_path, "fra.txt", corrupted))
    with pytest.raises(DataError, match=r"toy/fra\.txt\.gz: checksum mismatch for the file downloaded from file://"):
        download_file(entry, tmp_path / "data")
    assert not list(tmp_path.glob("data/**/*.gz*"))  # neither the file nor a temporary one
    gzipped = DataFile("toy/fra.txt.gz", sha256="0" * 64, content_sha256=sha256(CONTENT),
                       url=served(tmp_path, "fra.txt.gz", gzip.compress(corrupted)))
    with pytest.raises(DataError, match="checksum mismatch"):
        download_file(gzipped, tmp_path / "data")


def test_download_errors_for_unreachable_and_derived_files(tmp_path):
    missing = DataFile("toy/a.gz", "0" * 64, sha256(CONTENT), (tmp_path / "nowhere.txt").as_uri())
    with pytest.raises(DataError, match=r"nowhere\.txt: download failed"):
        download_file(missing, tmp_path / "data")
    with pytest.raises(DataError, match=r"toy/images\.tar: no public source"):
        download_file(DataFile("toy/images.tar", "0" * 64, None, None), tmp_path / "data")


def test_download_a_dataset_from_one_archive_fetched_once(tmp_path, monkeypatch):
    about = b"CC-BY 2.0 (France)\n"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("fra-eng/fra.txt", CONTENT)
        bundle.writestr("fra-eng/_about.txt", about)
    url = served(tmp_path, "fra-eng.zip", archive.getvalue())
    files = (DataFile("toy/fra.txt.gz", "0" * 64, sha256(CONTENT), url, member="fra-eng/fra.txt"),
             DataFile("toy/_about.txt.gz", "0" * 64, sha256(about), url, member="_about.txt"))  # by base name
    monkeypatch.setitem(DATASETS, "toy", DatasetInfo("toy", "a toy", files, "CC-BY"))
    fetched = []
    real_fetch = datasets._fetch
    monkeypatch.setattr(datasets, "_fetch", lambda u: fetched.append(u) or real_fetch(u))

    root = download("toy", tmp_path / "data")
    assert fetched == [url]
    assert gzip.decompress((root / "toy" / "fra.txt.gz").read_bytes()) == CONTENT
    assert gzip.decompress((root / "toy" / "_about.txt.gz").read_bytes()) == about
    assert require("toy", root) == root
    download("toy", root)  # everything present: nothing fetched
    assert fetched == [url]


@needs_data
def test_download_reproduces_a_real_catalogue_file(tmp_path):
    """The Time Machine served uncompressed from a file:// URL is accepted against the catalogue's checksum."""
    entry = DATASETS["timemachine"].files[0]
    content = gzip.decompress((DATA_DIR / entry.path).read_bytes())
    local = DataFile(entry.path, entry.sha256, entry.content_sha256, served(tmp_path, "timemachine.txt", content))
    assert gzip.decompress(download_file(local, tmp_path / "data").read_bytes()) == content


@needs_data
def test_catalogue_checksums_match_the_shared_data():
    for info in DATASETS.values():
        for entry in info.files:
            path = DATA_DIR / entry.path
            if not path.is_file():
                continue  # a data set this checkout's shared directory does not hold
            stored = path.read_bytes()
            assert sha256(stored) == entry.sha256, entry.path
            if entry.content_sha256 is not None:
                assert sha256(gzip.decompress(stored)) == entry.content_sha256, entry.path


# ------------------------------------------------------------------------------------------------ real corpora
@needs_data
@pytest.mark.parametrize("split, alias, size", [("train", "train", 29_000), ("val", "valid", 1_014),
                                                ("test_2016_flickr", "test", 1_000)])
def test_multi30k_split_sizes(split, alias, size):
    pairs = load_parallel("multi30k", split, "en", "de")
    assert len(pairs) == size
    assert load_parallel("multi30k", alias, "en", "de") == pairs
    if split == "train":  # the shared data README's sample line
        assert pairs[0] == ("Two young, White males are outside near many bushes.",
                            "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.")
        assert load_parallel("multi30k", "train", "fr", "en")[0] == (
            "Deux jeunes hommes blancs sont dehors près de buissons.", pairs[0][0])


@needs_data
def test_tatoeba_fra_eng_seeded_90_5_5_split():
    splits = {name: load_parallel("tatoeba-fra-eng", name, "en", "fr") for name in ("train", "valid", "test")}
    assert [len(pairs) for pairs in splits.values()] == [150_417, 8_356, 8_357]  # of 167,130
    with gzip.open(DATA_DIR / "fra-eng" / "fra.txt.gz", "rt", encoding="utf-8") as handle:
        every_pair = [tuple(line.rstrip("\n").split("\t")) for line in handle]
    assert sum((Counter(pairs) for pairs in splits.values()), Counter()) == Counter(every_pair)
    reversed_test = load_parallel("tatoeba-fra-eng", "test", "fr", "en")
    assert reversed_test == [(fr, en) for en, fr in splits["test"]]


# ------------------------------------------------------------------------------------------------ bundled sample
def is_subsequence(part, whole) -> bool:
    items = iter(whole)
    return all(any(item == wanted for item in items) for wanted in part)


def test_tatoeba_sample_split_sizes_disjoint_and_in_file_order():
    every_pair = datasets._read_tatoeba_sample()
    assert len(every_pair) == 20_000 and every_pair[0] == ("Go.", "Va !")
    splits = {name: load_parallel("tatoeba-sample", name, "en", "fr") for name in ("train", "valid", "test")}
    assert {name: len(pairs) for name, pairs in splits.items()} == {"train": 19_000, "valid": 500, "test": 500}
    # together the three splits are the sample, each pair exactly once: disjoint and complete
    assert sum((Counter(pairs) for pairs in splits.values()), Counter()) == Counter(every_pair)
    assert all(is_subsequence(pairs, every_pair) for pairs in splits.values())
    assert load_parallel("tatoeba-sample", "val", "en", "fr") == splits["valid"]


def test_seeded_order_is_a_fixed_permutation():
    """The splits hang on this order: it must never change (hashlib only, no NumPy or Python RNG)."""
    assert seeded_order(10, 1) == [8, 7, 9, 0, 5, 1, 3, 2, 6, 4]
    assert sorted(seeded_order(1000, 2)) == list(range(1000))
    assert seeded_order(1000, 2) != seeded_order(1000, 3)


@pytest.mark.parametrize("args, fragment", [
    (("wmt14", "train", "en", "de"), "dataset: must be one of"),
    (("multi30k", "train", "en", "cs"), "tgt_lang: multi30k has ['en', 'de', 'fr'], got 'cs'"),
    (("tatoeba-sample", "train", "en", "en"), "tgt_lang: must differ from src_lang"),
    (("multi30k", "test_2017", "en", "de"), "split: multi30k has"),
])
def test_load_parallel_config_errors(args, fragment):
    with pytest.raises(ConfigError) as error:
        load_parallel(*args)
    assert fragment in str(error.value)


def test_missing_dataset_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="dataset 'multi30k' not found"):
        load_parallel("multi30k", "train", "en", "de", data_dir=tmp_path)
