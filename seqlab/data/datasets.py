"""The catalogue of real data sets: where they live, their checksums, upstream sources and licences.

Data sets are read from a *data directory* laid out as ``shared/data`` (see its README): every file is the
source's exact content, gzipped (``gzip -9n``), except the Multi30k ``raw/*.gz`` files (the source's own gzip
files) and the Flickr8k image tars (derived, not downloadable).  ``resolve_data_dir`` finds that directory,
``require`` checks a data set is there, ``download`` fetches a missing one from its upstream URLs (verifying
sha256 checksums), and ``load_parallel`` reads the sentence pairs of a translation corpus.

Splits of the corpora without an official split (Tatoeba) come from a seeded hash order (``seeded_order``), so
they are the same on every machine and every Python/NumPy version.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence, TypeVar

from seqlab.data.config import PARALLEL_LANGUAGES
from seqlab.data.corpora import read_parallel, read_tsv_pairs
from seqlab.errors import ConfigError, DataError
from seqlab.utils import atomic_write

Item = TypeVar("Item")


@dataclass(frozen=True)
class DataFile:
    """One stored file.  ``sha256`` is that of the stored file, ``content_sha256`` that of its uncompressed
    content, which is what the upstream ``url`` (or its archive ``member``) serves; ``url`` None: no public
    source (a derived file)."""

    path: str
    sha256: str
    content_sha256: str | None
    url: str | None
    member: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    files: tuple[DataFile, ...]
    license: str


MULTI30K = "https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1"
PTB = "https://raw.githubusercontent.com/tomsercu/lstm/master/data"
D2L_FRA_ENG = "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
D2L_TIME_MACHINE = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
CONLL2000 = ("https://raw.githubusercontent.com/teropa/nlp/f89bc5a15b516208de1cfe2abe9692b7ed9a43e2/"
             "resources/corpora/conll2000")
RT_POLARITY = "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz"
TREC = ("https://raw.githubusercontent.com/Rexhaif/Active-NLP/431a53d288cbd4ac2307efef8888419be4ccdd9f/"
        "datasets/trec/orig")
FLICKR8K_TEXT = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip"
DAILYDIALOG = ("https://raw.githubusercontent.com/Ls-Dai/Deep-Reinforcement-Learning-for-Dialogue-Generation-in-PyTorch/"
               "bae51b16e3e8c0ce4ffd70b75ecfc40fbeb8e7ee/data")
TATOEBA_ATTRIBUTION = ("CC-BY 2.0 (France), https://creativecommons.org/licenses/by/2.0/ ; "
                       "Attribution: www.manythings.org/anki and tatoeba.org")


# name -> what it is, its files (stored path, sha256 stored / uncompressed, upstream URL) and its licence.
DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo(
        "multi30k",
        "Multi30K task 1 (Elliott et al. 2016, 2017): en/de/fr image descriptions; "
        "train 29,000 / val 1,014 / test_2016_flickr 1,000",
        (
            DataFile("multi30k/image_splits/test_2016_flickr.txt.gz",
                     "f0b1bd35d68c7c644bc315f92e6d9876744d49ef405d7ae4a8b9c4ff41c0f736",
                     "871e8ecafc66fb13e044ecccf669d04a865b4c58553227df86b933f0337a1563",
                     f"{MULTI30K}/image_splits/test_2016_flickr.txt"),
            DataFile("multi30k/image_splits/train.txt.gz",
                     "1ea108b527f8491071b81131f07fa761165d65c46c655c62e0383c652047b6aa",
                     "97ee57e160a46c7d0e75298ebf57967e1245698a6f8806436ff07e61d1a41221",
                     f"{MULTI30K}/image_splits/train.txt"),
            DataFile("multi30k/image_splits/val.txt.gz",
                     "d618dcae73553056ef0ce11d1305244d6928ff8e5554cb5cd60ece53e9eaa9aa",
                     "db26f03eaf833ec47bfaea129ed053b68cbcfc5d1f9a09c4cdf7c88fbfea7108",
                     f"{MULTI30K}/image_splits/val.txt"),
            DataFile("multi30k/raw/test_2016_flickr.de.gz",
                     "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
                     "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
                     f"{MULTI30K}/raw/test_2016_flickr.de.gz"),
            DataFile("multi30k/raw/test_2016_flickr.en.gz",
                     "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
                     "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
                     f"{MULTI30K}/raw/test_2016_flickr.en.gz"),
            DataFile("multi30k/raw/test_2016_flickr.fr.gz",
                     "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
                     "cb3160d69b002bb638e66cc7612fcd56cb0af82eadc9c142dedc438afb885ef6",
                     f"{MULTI30K}/raw/test_2016_flickr.fr.gz"),
            DataFile("multi30k/raw/train.de.gz",
                     "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
                     "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
                     f"{MULTI30K}/raw/train.de.gz"),
            DataFile("multi30k/raw/train.en.gz",
                     "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
                     "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
                     f"{MULTI30K}/raw/train.en.gz"),
            DataFile("multi30k/raw/train.fr.gz",
                     "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
                     "5925a3c18f1587b6b54b87743106e6e8ab93618edb6f65d19eac0621f853a10d",
                     f"{MULTI30K}/raw/train.fr.gz"),
            DataFile("multi30k/raw/val.de.gz",
                     "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
                     "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
                     f"{MULTI30K}/raw/val.de.gz"),
            DataFile("multi30k/raw/val.en.gz",
                     "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
                     "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
                     f"{MULTI30K}/raw/val.en.gz"),
            DataFile("multi30k/raw/val.fr.gz",
                     "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
                     "5304e444d842e962b2dda4d816b70b22a1765b15401642b7ca37a67477e708dc",
                     f"{MULTI30K}/raw/val.fr.gz"),
            DataFile("multi30k/tok/test_2016_flickr.lc.norm.tok.de.gz",
                     "2628844bbb7783afa0ba8a9927f174aafeee715871aa8deed3af2c4d0b71a658",
                     "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4",
                     f"{MULTI30K}/tok/test_2016_flickr.lc.norm.tok.de"),
            DataFile("multi30k/tok/test_2016_flickr.lc.norm.tok.en.gz",
                     "b95df925929cb222d0cf733f153bcbfba0f00180c85fd61dd5c4fb27f29ee394",
                     "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2",
                     f"{MULTI30K}/tok/test_2016_flickr.lc.norm.tok.en"),
            DataFile("multi30k/tok/test_2016_flickr.lc.norm.tok.fr.gz",
                     "97b9b377d15dfc98e55e270dda3d6c91f8df02a5cf9e682457f6c59bd6be00db",
                     "1463bd5960f9bfe098ec3cd752d3df0c49c84dc646fb518964a29232658cd836",
                     f"{MULTI30K}/tok/test_2016_flickr.lc.norm.tok.fr"),
            DataFile("multi30k/tok/train.lc.norm.tok.de.gz",
                     "7e3392f03c0fe978165d22fb5eaf0d0b9b1d9c413283b5193f02d4cb27e50797",
                     "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505",
                     f"{MULTI30K}/tok/train.lc.norm.tok.de"),
            DataFile("multi30k/tok/train.lc.norm.tok.en.gz",
                     "79d990dd71713faec0e3165cbd3b60acdf6fe11cab2e37a28f374c6bdbb297ec",
                     "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119",
                     f"{MULTI30K}/tok/train.lc.norm.tok.en"),
            DataFile("multi30k/tok/train.lc.norm.tok.fr.gz",
                     "10438b7694a52af6164448c31198e9453b59a0d3b8a6715428722f0f8fbba2c0",
                     "8fa41bb718412bcb7c5dfa58603842810a01543eae86a51279f9886b901266e1",
                     f"{MULTI30K}/tok/train.lc.norm.tok.fr"),
            DataFile("multi30k/tok/val.lc.norm.tok.de.gz",
                     "006ad58fd6a2ad6502094160fe5273d93abf34a207967fdc69eafd7558b5ef39",
                     "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00",
                     f"{MULTI30K}/tok/val.lc.norm.tok.de"),
            DataFile("multi30k/tok/val.lc.norm.tok.en.gz",
                     "2c7e5e9cf54ba0dff0cc4b84836d5a583f80ecaaab90b37a123d1376306215cd",
                     "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec",
                     f"{MULTI30K}/tok/val.lc.norm.tok.en"),
            DataFile("multi30k/tok/val.lc.norm.tok.fr.gz",
                     "78b89a01ca96bb9940c525ad5eb73c0028d3e5bfd90008886a22961afb8e8994",
                     "b303e301aa21fe7822a846b2b3fb2d5a1121ec807cd5b1d006fb7b2b5507168a",
                     f"{MULTI30K}/tok/val.lc.norm.tok.fr"),
        ),
        "No licence file. Source README: partially derived from Flickr30K; use of the images must abide by the Flickr "
        "Terms of Use; for non-commercial research and educational purposes. Cite Elliott et al. 2016 (W16-3210) "
        "and 2017 (W17-4718).",
    ),
    DatasetInfo(
        "tatoeba-fra-eng",
        "Tatoeba English-French pairs, manythings.org file of 2019-04-07 as used by d2l: 167,130 lines en<TAB>fr",
        (
            DataFile("fra-eng/_about.txt.gz",
                     "dd56ec603ba3478bd8ba49d3d7959e35f916a54fc1dd8dc4c27df8c221d2ac04",
                     "79f39a53dbddaf7ab43c801f231089174a611f23987244056f9e3cb5aa79358b",
                     D2L_FRA_ENG, member="fra-eng/_about.txt"),
            DataFile("fra-eng/fra.txt.gz",
                     "3f7ce9b82d57439edff14f487e2ef9fd52ad72757a838857f153fa4668dd6066",
                     "0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104",
                     D2L_FRA_ENG, member="fra-eng/fra.txt"),
        ),
        TATOEBA_ATTRIBUTION,
    ),
    DatasetInfo(
        "ptb",
        "Penn Treebank, Mikolov's language-modelling version: ptb.{train,valid,test}.txt",
        (
            DataFile("ptb/ptb.test.txt.gz",
                     "5015d206077ff3e96161868c5c280ec8a28e9ad5617ef99ee0e734aaef6130c5",
                     "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
                     f"{PTB}/ptb.test.txt"),
            DataFile("ptb/ptb.train.txt.gz",
                     "c4c6455d85f60640431f7bc738d51265ba2d55dcce10e8906322d6f9e3dcca81",
                     "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                     f"{PTB}/ptb.train.txt"),
            DataFile("ptb/ptb.valid.txt.gz",
                     "f2148d96d82f827399b7e5040868a4541bd2d2612ebaf5a2ff213bc07fd74eb8",
                     "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                     f"{PTB}/ptb.valid.txt"),
        ),
        "Derived from the Penn Treebank (LDC99T42, WSJ); distributed by Mikolov with simple-examples for "
        "research.",
    ),
    DatasetInfo(
        "timemachine",
        "H. G. Wells, The Time Machine (d2l's text): 3,221 lines",
        (
            DataFile("timemachine/timemachine.txt.gz",
                     "abca1c6e9bb77d2d6478e3d1dd0a5aae6a191238ceb74dcdbaa8a48717184917",
                     "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516",
                     D2L_TIME_MACHINE),
        ),
        "Public domain (Project Gutenberg eBook #35).",
    ),
    DatasetInfo(
        "conll2000",
        "CoNLL-2000 chunking (Tjong Kim Sang & Buchholz 2000): train 8,936 / test 2,012 sentences",
        (
            DataFile("conll2000/test.txt.gz",
                     "aca2678bf0292bc6fa49addf93b2a5ee33ddf7c03ccff9f154d285e8ff4ef67e",
                     "73b7b1e565fa75a1e22fe52ecdf41b6624d6f59dacb591d44252bf4d692b1628",
                     f"{CONLL2000}/test.txt"),
            DataFile("conll2000/train.txt.gz",
                     "c36219269bf9debdcc281ca2dac3fbef596858d8d981d788697a3b6ece30360f",
                     "82033cd7a72b209923a98007793e8f9de3abc1c8b79d646c50648eb949b87cea",
                     f"{CONLL2000}/train.txt"),
        ),
        "No licence stated; derived from the Penn Treebank WSJ (LDC), distributed freely by CLiPS for the "
        "shared task.",
    ),
    DatasetInfo(
        "rt-polarity",
        "Sentence polarity v1.0 (Pang & Lee 2005, 'MR'): 5,331 + 5,331 snippets, cp1252",
        (
            DataFile("rt-polarity/rt-polarity.neg.gz",
                     "6f9dcf4d8248a4f0a2ad0e39764aff0450e40ac6a4f31aa87a9f1ec1a7869cda",
                     "4af43bf489620b498a0852c5a8c6a535155dec7985fdfea782b8f7756b957ccc",
                     RT_POLARITY, member="rt-polaritydata/rt-polarity.neg"),
            DataFile("rt-polarity/rt-polarity.pos.gz",
                     "e292143517152c751351b29b4e645d89b8b302bf6fb6a6ac28a16eb6e5dab04b",
                     "d79ef14009bbf87cd6be21f91c3ea1a3cbcb73b34dfb4231aef7bbcd7677abc4",
                     RT_POLARITY, member="rt-polaritydata/rt-polarity.pos"),
            DataFile("rt-polarity/rt-polaritydata.README.1.0.txt.gz",
                     "2e177a331da4b5c2b7bb4c6567da91772b701ac11cdb8195c0cf02fe4ce51533",
                     "67bc8e858b247a20eb5d6dec39d1fca89ea36112872b48ac8fddfb599dadbf49",
                     RT_POLARITY, member="rt-polaritydata.README.1.0.txt"),
        ),
        "No licence stated; cite Pang & Lee, ACL 2005.",
    ),
    DatasetInfo(
        "trec",
        "TREC question classification (Li & Roth 2002): train_5500 (5,452) / TREC_10 (500)",
        (
            DataFile("trec/TREC_10.label.gz",
                     "366705c9150d3442b1ca366ce7da02943c4d1304bf6c4e847d5cf14d6172f09d",
                     "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e",
                     f"{TREC}/TREC_10.label"),
            DataFile("trec/train_5500.label.gz",
                     "afff5c8d498e84c5193219052a8dc3a1cc46b5642971edceae8e316001940f28",
                     "016243a7ddb380241c94eabcf073a210b9a83a2e772347cb5ed844722a192faf",
                     f"{TREC}/train_5500.label"),
        ),
        "No licence stated (Hugging Face: unknown); cite Li & Roth, COLING 2002.",
    ),
    DatasetInfo(
        "dailydialog",
        "DailyDialog (Li et al. 2017): 13,118 two-person English dialogues; official split 11,118 / 1,000 / 1,000",
        (
            DataFile("dailydialog/train/dialogues_train.txt.gz",
                     "bb7f1e8e234139fdd7a0da4192b7c3cae6853d3ac829061b151725284da25978",
                     "71633bd5fdb0b09dd82215b131b56432cf7329a0fe50bc8adec168713d350d1a",
                     f"{DAILYDIALOG}/train/dialogues_train.txt"),
            DataFile("dailydialog/validation/dialogues_validation.txt.gz",
                     "48aad94b542c6367c1d02d16a11fe034dabe625d9ff125435c76efd17efe3df7",
                     "2ad64701fe3a4449e7a6ee7cdc6c2a71c80f77b8a34f708ac0532395f499081c",
                     f"{DAILYDIALOG}/validation/dialogues_validation.txt"),
            DataFile("dailydialog/test/dialogues_test.txt.gz",
                     "3a6b96d10a026e2913076deb9e270a58b23ffac123c4514bdec990e5d777a2f6",
                     "3c323651cdfb09f7b529f850eddf96a638fc6cc9b43330b77956ab248484a1a8",
                     f"{DAILYDIALOG}/test/dialogues_test.txt"),
        ),
        "CC BY-NC-SA 4.0 (non-commercial, share-alike); cite Li et al., IJCNLP 2017.",
    ),
    DatasetInfo(
        "flickr8k",
        "Flickr8k (Hodosh et al. 2013): 8,091 images (128x128 JPEG) x 5 captions; "
        "train 6,000 / dev 1,000 / test 1,000",
        (
            DataFile("flickr8k/Flickr8k.token.txt.gz",
                     "66568297576898cbb848150e94448b201e2c396d6f94597fa932528022a1db13",
                     "1e1f3a371ba1a1bf742e6930521c037e046b2bf3fcc2390ba8405e0301ed7689",
                     FLICKR8K_TEXT, member="Flickr8k.token.txt"),
            DataFile("flickr8k/Flickr_8k.devImages.txt.gz",
                     "9c9342bfd030b53537a83e1182b331c499296bf9441a37e1ac9c2a0ccd7f614b",
                     "18ba829f47f6df1cb830bf7f0506e2ddf333818925299babbd1bbcaf50fdc504",
                     FLICKR8K_TEXT, member="Flickr_8k.devImages.txt"),
            DataFile("flickr8k/Flickr_8k.testImages.txt.gz",
                     "3cc7b3caa8aaa823070e6a6d02683c059d09d7bb7c85804b4312be47b8be45d1",
                     "c0924146c131458ceba45da59670fe9520eadce1e5cafffa16a817672a9b1f17",
                     FLICKR8K_TEXT, member="Flickr_8k.testImages.txt"),
            DataFile("flickr8k/Flickr_8k.trainImages.txt.gz",
                     "5649d21a03add6434b29e3a26e43d217d2011a1787ad2a324367ab15b7b9d2bc",
                     "e330ddd5156a4c2d2e2b67bc587e70e588f2d132bd8a10dc54dcb71e58115d8e",
                     FLICKR8K_TEXT, member="Flickr_8k.trainImages.txt"),
            DataFile("flickr8k/readme.txt.gz",
                     "99462ac82d077ecbe5b3234bd65a3e1a990f7c4e318c094bd8d050b6a817a950",
                     "6152fc45ae9b629c4af9c8466e5ae608b80fbcb0f6316fef458dc160020a21a2",
                     FLICKR8K_TEXT, member="readme.txt"),
            DataFile("flickr8k/images-000.tar",
                     "b2f126966e57fbf919f7229b7fec3b50be9128f55853d8380cde04eada5b7f0c",
                     None, None),  # derived images: no public source
            DataFile("flickr8k/images-001.tar",
                     "790a4de37ede5351f96b9e786ca07bd89f8d025ebac0bf9be5eee3f6ff269892",
                     None, None),  # derived images: no public source
            DataFile("flickr8k/images-002.tar",
                     "94e063f86114f2313083229962cf2a789e1d804842807de4f8c2ef0349a02952",
                     None, None),  # derived images: no public source
            DataFile("flickr8k/images-003.tar",
                     "95869b28d6231d6f55843e807ec7bd31ba925ff76b2a81ba1a3bc0129c776bbf",
                     None, None),  # derived images: no public source
        ),
        "No licence stated; images stay the copyright of their Flickr owners (research use). Cite Hodosh, "
        "Young & Hockenmaier 2013, JAIR 47.",
    ),
)}


# ------------------------------------------------------------------------------------------------ locating
def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$SEQLAB_DATA``, else the first that exists of
    ``<cwd>/../shared/data``, ``<cwd>/shared/data``, ``<repository>/../shared/data``, ``~/.cache/seqlab/data``
    (the last is also where ``download`` puts data when none exists)."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("SEQLAB_DATA"):
        return Path(os.environ["SEQLAB_DATA"]).expanduser()
    repository = Path(__file__).resolve().parents[2]
    candidates = [Path.cwd() / ".." / "shared" / "data", Path.cwd() / "shared" / "data",
                  repository.parent / "shared" / "data", Path.home() / ".cache" / "seqlab" / "data"]
    return next((path.resolve() for path in candidates if path.is_dir()), candidates[-1])


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ConfigError(f"dataset: unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return DATASETS[name]


def require(name: str, data_dir: str | Path | None = None, paths: list[str] | None = None) -> Path:
    """The data directory, after checking that the data set's files (or just ``paths`` of them) are there."""
    info = dataset_info(name)
    root = resolve_data_dir(data_dir)
    wanted = paths if paths is not None else [entry.path for entry in info.files]
    if any(not (root / path).is_file() for path in wanted):
        raise DataError(f"dataset '{name}' not found under {root} (set --data-dir or SEQLAB_DATA, "
                        f"or run seqlab download {name})")
    return root


# ------------------------------------------------------------------------------------------------ downloading
def download(name: str, data_dir: str | Path | None = None) -> Path:
    """Fetch every missing file of data set ``name`` into the data directory; returns the directory.

    Each file is checked against its sha256 before it is renamed into place, so an interrupted or tampered
    download never leaves a file behind.  Archives (zip, tar.gz) are fetched once for all their members.
    """
    root = resolve_data_dir(data_dir)
    archives: dict[str, bytes] = {}
    for entry in dataset_info(name).files:
        if not (root / entry.path).is_file():
            download_file(entry, root, archives)
    return root


def download_file(entry: DataFile, root: Path, archives: dict[str, bytes] | None = None) -> Path:
    """Fetch one file from ``entry.url`` (``file://`` works too), verify it, write it atomically."""
    if entry.url is None:
        raise DataError(f"{entry.path}: no public source (a derived file); copy it from a seqlab data directory")
    archives = {} if archives is None else archives
    if entry.url not in archives:
        archives[entry.url] = _fetch(entry.url)
    payload = archives[entry.url]
    if entry.member:
        payload = _archive_member(payload, entry.url, entry.member)
    stored = _verified_file(entry, payload)
    target = root / entry.path
    with atomic_write(target, "wb") as handle:
        handle.write(stored)
    return target


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as error:  # URLError, HTTPError and timeouts are all OSErrors
        raise DataError(f"{url}: download failed ({error})") from None


def _archive_member(archive: bytes, url: str, member: str) -> bytes:
    """A member of a zip or tar(.gz) archive, found by its path or, failing that, by its base name."""
    if url.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            names = bundle.namelist()
            return bundle.read(_member_name(names, member, url))
    with tarfile.open(fileobj=io.BytesIO(archive)) as bundle:
        name = _member_name(bundle.getnames(), member, url)
        extracted = bundle.extractfile(name)
        if extracted is None:
            raise DataError(f"{url}: {name} is not a regular file")
        return extracted.read()


def _member_name(names: list[str], member: str, url: str) -> str:
    matches = [n for n in names if n == member] or [n for n in names if n.rsplit("/", 1)[-1] == member.split("/")[-1]]
    if not matches:
        raise DataError(f"{url}: archive has no member {member}")
    return matches[0]


def _verified_file(entry: DataFile, payload: bytes) -> bytes:
    """The bytes to store: the payload itself when it *is* the stored file (same sha256), else the payload
    gzipped when its content has the expected sha256 (re-gzipping gives other bytes than ``gzip -9n``, so the
    content hash is what identifies it)."""
    if hashlib.sha256(payload).hexdigest() == entry.sha256:
        return payload
    content = gzip.decompress(payload) if payload[:2] == b"\x1f\x8b" else payload
    if entry.content_sha256 is None or hashlib.sha256(content).hexdigest() != entry.content_sha256:
        raise DataError(f"{entry.path}: checksum mismatch for the file downloaded from {entry.url} "
                        f"(expected sha256 {entry.content_sha256 or entry.sha256})")
    return gzip.compress(content, compresslevel=9, mtime=0) if entry.path.endswith(".gz") else content


# ------------------------------------------------------------------------------------------------ parallel data
MULTI30K_SPLITS = {"train": "train", "val": "val", "valid": "val", "test_2016_flickr": "test_2016_flickr",
                   "test": "test_2016_flickr"}
TATOEBA_SPLITS = {"train": "train", "valid": "valid", "val": "valid", "test": "test"}
TATOEBA_SAMPLE = "tatoeba_fra_eng_sample.tsv"
TATOEBA_SAMPLE_HELD_OUT = 500  # pairs in each of valid and test
TATOEBA_SPLIT_SEED = 1
LANGUAGES = PARALLEL_LANGUAGES


def load_parallel(name: str, split: str, src_lang: str, tgt_lang: str,
                  data_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """(source, target) sentence pairs of a translation corpus split, raw text.

    * ``multi30k``: splits train / val / test_2016_flickr (aliases valid, test); languages en, de, fr.
    * ``tatoeba-fra-eng``: the 167,130 d2l pairs; no official split, so a seeded hash order cuts 90/5/5 into
      train / valid / test (each kept in file order); languages en, fr, either direction.
    * ``tatoeba-sample``: the bundled 20,000 short pairs (no data directory needed): 500 test, 500 valid, the
      rest train, chosen the same way.
    """
    if name not in LANGUAGES:
        raise ConfigError(f"dataset: must be one of {list(LANGUAGES)} for translation, got {name!r}")
    for key, lang in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
        if lang not in LANGUAGES[name]:
            raise ConfigError(f"{key}: {name} has {list(LANGUAGES[name])}, got {lang!r}")
    if src_lang == tgt_lang:
        raise ConfigError(f"tgt_lang: must differ from src_lang ({src_lang!r})")
    splits = MULTI30K_SPLITS if name == "multi30k" else TATOEBA_SPLITS
    if split not in splits:
        raise ConfigError(f"split: {name} has {list(splits)}, got {split!r}")
    if name == "multi30k":
        return _load_multi30k(splits[split], src_lang, tgt_lang, data_dir)
    if name == "tatoeba-sample":
        pairs = _read_tatoeba_sample()
        cut = {"test": (0, TATOEBA_SAMPLE_HELD_OUT), "valid": (TATOEBA_SAMPLE_HELD_OUT, 2 * TATOEBA_SAMPLE_HELD_OUT),
               "train": (2 * TATOEBA_SAMPLE_HELD_OUT, len(pairs))}
    else:
        root = require(name, data_dir, ["fra-eng/fra.txt.gz"])
        pairs = read_tsv_pairs(root / "fra-eng" / "fra.txt.gz")
        first, second = int(len(pairs) * 0.9), int(len(pairs) * 0.95)
        cut = {"train": (0, first), "valid": (first, second), "test": (second, len(pairs))}
    start, stop = cut[splits[split]]
    chosen = sorted(seeded_order(len(pairs), TATOEBA_SPLIT_SEED)[start:stop])
    return [pairs[i] if src_lang == "en" else pairs[i][::-1] for i in chosen]


def _load_multi30k(split: str, src_lang: str, tgt_lang: str, data_dir: str | Path | None) -> list[tuple[str, str]]:
    paths = [f"multi30k/raw/{split}.{lang}.gz" for lang in (src_lang, tgt_lang)]
    root = require("multi30k", data_dir, paths)
    return read_parallel(root / paths[0], root / paths[1])


def _read_tatoeba_sample() -> list[tuple[str, str]]:
    """The bundled sample: ``English<TAB>French`` lines, a prefix of the d2l fra.txt (CC-BY 2.0 FR)."""
    with resources.as_file(resources.files("seqlab").joinpath("resources", TATOEBA_SAMPLE)) as path:
        return read_tsv_pairs(path)


def seeded_order(count: int, seed: int) -> list[int]:
    """A pseudo-random permutation of ``range(count)``: indices sorted by a hash of (seed, index).

    Unlike ``random.shuffle`` or NumPy generators it depends on nothing but hashlib, so a split made from it is
    the same everywhere, forever.
    """
    return sorted(range(count), key=lambda i: hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest())


def hold_out(examples: Sequence[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """(kept, held out), ``fraction`` of the examples chosen by a seeded hash order; both keep file order."""
    count = round(len(examples) * fraction)
    held = set(seeded_order(len(examples), seed)[:count])
    return ([e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held])
