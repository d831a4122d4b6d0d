"""The newcomer's rough edges (issue 17): messages that say what was found, sacreBLEU's full BLEU line, one score
format for both model kinds, prompts that warn instead of changing quietly, and interactive use at a terminal."""

import io
import json

import sacrebleu

from seqlab.commands import generate, score, translate
from tests.conftest import check_one_line_error, invoke
from tests.integration.test_cli import assert_clean_error, corpus, seqlab, trained  # noqa: F401 (fixtures)
from tests.integration.test_lm_cli import lm_dir  # noqa: F401 (fixture)


class Terminal(io.BytesIO):
    """Standard input as a person types it: a TTY whose lines arrive one by one."""

    @property
    def buffer(self):
        return self

    def isatty(self) -> bool:
        return True


def test_messages_say_what_was_found(trained, tmp_path):
    (tmp_path / "file.txt").write_text("x\n", encoding="utf-8")
    assert_clean_error(seqlab("translate", tmp_path / "file.txt"), "file.txt: not a directory")
    assert_clean_error(seqlab("train", tmp_path), f"{tmp_path}: is a directory, not a config file")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "best.pt").write_bytes(b"not a torch file at all")
    result = seqlab("translate", broken)
    assert_clean_error(result, "best.pt: not a seqlab checkpoint (or corrupted)")
    assert "weights_only" not in result.stderr


def test_bleu_prints_precisions_and_brevity_penalty_like_sacrebleu(tmp_path):
    hyps, refs = ["the cat sat on the mat", "a dog ran"], ["the cat sat on a mat", "the dog ran away"]
    (tmp_path / "hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref").write_text("\n".join(refs) + "\n", encoding="utf-8")
    result = seqlab("bleu", tmp_path / "hyp", tmp_path / "ref")
    expected = sacrebleu.corpus_bleu(hyps, [refs])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(expected) + " nrefs:1|")  # '... 83.3/60.0/... (BP = 0.846 ratio = ...'
    assert "BP = " in result.stdout and "/" in result.stdout.split()[3]


def test_forced_decoding_scores_in_the_lm_format(trained, corpus, tmp_path):
    src, tgt = tmp_path / "s", tmp_path / "t"
    src.write_text("go .\nhello .\n", encoding="utf-8")
    tgt.write_text("va !\nbonjour .\n", encoding="utf-8")
    result = seqlab("score", trained, "--src", src, "--tgt", tgt, "--rank", "per-token")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rank"] for r in records] == [1, 2] and records[0]["per_token"] >= records[1]["per_token"]
    assert all({"src", "tgt", "log_prob", "tokens", "per_token", "log_base"} <= r.keys() for r in records)
    assert all(r["log_prob"] < 0 and r["tokens"] >= 2 for r in records)


def test_translate_at_a_terminal_answers_each_line_as_typed(trained, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", Terminal(b"go .\n\nhello .\n"))
    code, out, err = invoke(translate, [str(trained)], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 2 and err.count("source> ") == 4  # 3 lines + the end; the blank one skipped
    monkeypatch.setattr("sys.stdin", io.BytesIO(b"go .\n\nhello .\n"))  # a pipe: one output line per input line
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    code, piped, _ = invoke(translate, [str(trained)], capsys)
    assert code == 0 and len(piped.splitlines()) == 3
    assert piped.splitlines()[0] == out.splitlines()[0] and piped.splitlines()[2] == out.splitlines()[1]


def test_a_line_typed_in_latin1_is_the_usual_one_line_error(trained, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", Terminal("go .\ncafé .\n".encode("latin-1")))
    code, out, err = invoke(translate, [str(trained)], capsys)
    check_one_line_error(code, err.replace("source> ", ""), "<stdin>:2: invalid utf-8")


def test_generate_and_score_at_a_terminal(lm_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", Terminal(b"i think\nyou think\n"))
    code, out, err = invoke(generate, [str(lm_dir), "--max-tokens", "3"], capsys)
    assert code == 0, err
    assert [line.split()[:2] for line in out.splitlines()] == [["i", "think"], ["you", "think"]]
    monkeypatch.setattr("sys.stdin", Terminal(b"to recognize speech is hard\n"))
    code, out, err = invoke(score, [str(lm_dir), "--lm"], capsys)
    assert code == 0, err
    assert json.loads(out)["text"] == "to recognize speech is hard" and "sentence> " in err


def test_a_char_model_warns_about_the_characters_it_drops():
    from seqlab.data.vocab import Vocab
    from seqlab.tasks.language_model import Preprocessing

    pre = Preprocessing(Vocab.build([list("abcdefghijklmnopqrstuvwxyz ")]), "char")
    assert pre.unreadable("Ünïcode 123 ☃") == ["Ü", "ï", "1", "2", "3", "☃"]
    assert pre.unreadable("Plain text") == []


def test_plot_draws_the_curves_of_a_training_log(trained, tmp_path):
    result = seqlab("plot", trained, "-o", tmp_path / "curves")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "curves").iterdir())
    assert {"loss.png", "learning_rate.png"} <= set(written) and all(name.endswith(".png") for name in written)
    assert all((tmp_path / "curves" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in written)
    assert sorted(result.stdout.split()) == sorted(str(tmp_path / "curves" / name) for name in written)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "train_log.jsonl").write_text('{"event": "train", "step": 1, "loss": 2.0}\n{oops\n', encoding="utf-8")
    assert_clean_error(seqlab("plot", broken), "train_log.jsonl:2: not a JSON record")
    assert_clean_error(seqlab("plot", tmp_path / "nothing"), "no such model directory")
