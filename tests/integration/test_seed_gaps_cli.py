"""Issue 20's missing CLI tests: ``seqlab search --random N`` end to end, and ``seqlab generate MODEL_DIR`` with
no prompt and stdin not a terminal (a sentence from the start token)."""

import json

from tests.integration.test_cli import corpus, seqlab  # noqa: F401 (fixture)
from tests.integration.test_lm_cli import TEXT, lm_dir  # noqa: F401 (fixture)


def _search(corpus, model_dir, seed):
    result = seqlab("search", corpus / "config.yaml", "--model-dir", model_dir, "--random", "2", "--seed", str(seed),
                    "--grid", "model.hidden_size=16,24,32", "--grid", "train.lr=0.01,0.02",
                    "--set", "train.max_steps=2")
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["params"] for line in (model_dir / "search.jsonl").read_text().splitlines()]


def test_random_search_trains_n_trials_inside_the_grid_reproducibly(corpus, tmp_path):
    first = _search(corpus, tmp_path / "a", seed=4)
    assert len(first) == 2 and first[0] != first[1]
    for params in first:
        assert params["model.hidden_size"] in {"16", "24", "32"} and params["train.lr"] in {"0.01", "0.02"}
    assert _search(corpus, tmp_path / "b", seed=4) == first


def test_generate_without_a_prompt_starts_from_the_start_token(lm_dir):
    result = seqlab("generate", lm_dir, "--max-tokens", "8", stdin="")  # stdin a pipe, not a terminal
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    words = set(" ".join(TEXT).split())
    assert len(lines) == 1 and lines[0].split() and set(lines[0].split()) <= words
