"""The dialogue task's parts: DailyDialog reading and its quirks, (context, response) pairs, the HRED model's
two-level encoder (batch invariance, gradients, attention over turns or tokens), the flat source, distinct-n and
the response metrics, and the chat loop's history."""

from __future__ import annotations

import gzip

import pytest
import sacrebleu
import torch

from seqlab.commands.chat import Conversation
from seqlab.data.datasets import resolve_data_dir
from seqlab.data.dialogue import (dialogue_pairs, normalise_turn, overlapping_dialogues, read_dailydialog,
                                  read_dialogue_file)
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.hred import HRED, HREDConfig
from seqlab.tasks.dialogue import SEPARATOR, Preprocessing, Reply, distinct_n, response_metrics, source_tensors

DATA = resolve_data_dir()
needs_dailydialog = pytest.mark.skipif(not (DATA / "dailydialog").is_dir(),
                                       reason=f"DailyDialog not found under {DATA} (set SEQLAB_DATA)")


# ------------------------------------------------------------------------------------------------ data
def test_normalise_turn_undoes_the_sources_quirks():
    assert normalise_turn("I ’ m fine , right.But don’t go \x7f !") == ["i'm", "fine", ",", "right", ".", "but",
                                                                       "don't", "go", "!"]
    assert normalise_turn("Mr . Cooper", lowercase=False) == ["Mr", ".", "Cooper"]
    assert normalise_turn("3.5 kilos") == ["3.5", "kilos"]  # a decimal point is no sentence end


def test_a_dialogue_file_is_read_and_bad_lines_name_their_number(tmp_path):
    good = tmp_path / "d.txt.gz"
    with gzip.open(good, "wt", encoding="utf-8") as handle:
        handle.write("Hi . __eou__ Hello ! __eou__\n\nHow are you ? __eou__ Fine . __eou__ Good . __eou__\n")
    assert read_dialogue_file(good) == [["Hi .", "Hello !"], ["How are you ?", "Fine .", "Good ."]]
    missing_marker = tmp_path / "bad.txt"
    missing_marker.write_text("a __eou__ b __eou__\nc __eou__ d\n")
    with pytest.raises(DataError, match=r"bad.txt:2: a dialogue line must end with __eou__"):
        read_dialogue_file(missing_marker)
    empty_turn = tmp_path / "empty.txt"
    empty_turn.write_text("a __eou__  __eou__\n")
    with pytest.raises(DataError, match=r"empty.txt:1: empty turn"):
        read_dialogue_file(empty_turn)


def test_pairs_take_at_most_history_turns_and_never_answer_the_first_turn():
    dialogue = [["a"], ["b"], ["c"], ["d"]]
    pairs = dialogue_pairs([dialogue], history=2)
    assert [(p.context, p.response, p.turn) for p in pairs] == [
        ((("a",),), ("b",), 1), ((("a",), ("b",)), ("c",), 2), ((("b",), ("c",)), ("d",), 3)]
    with pytest.raises(ValueError, match="history"):
        dialogue_pairs([dialogue], history=0)


def test_overlap_is_whole_dialogues_found_verbatim_in_train():
    train = [["a", "b"], ["c", "d"]]
    assert overlapping_dialogues([["c", "d"], ["a"], ["a", "b", "x"], ["a", "b"]], train) == {0, 3}


@needs_dailydialog
def test_dailydialog_counts_and_its_known_overlap():
    train, test = read_dailydialog("train"), read_dailydialog("test")
    assert (len(train), len(read_dailydialog("valid")), len(test)) == (11118, 1000, 1000)
    assert sum(map(len, test)) == 7740
    assert len(dialogue_pairs(test, 3)) == 7740 - 1000  # every turn but the first of each dialogue
    assert len(overlapping_dialogues(test, train)) == 93  # the figure of the data README (Wen et al. 2022)


# ------------------------------------------------------------------------------------------------ preprocessing
def vocab() -> Vocab:
    return Vocab.build([["a", "b", "c", "d", "e"]], specials=[SEPARATOR])


def test_a_flat_source_joins_the_last_turns_with_the_separator_and_truncates_each():
    pre = Preprocessing(vocab(), hierarchical=False, history=2, max_turn_len=2)
    ids = pre.vocab.encode
    (flat,) = pre.encode_context([["a"], ["b", "c", "d"], ["e"]])
    assert flat == ids(["c", "d", SEPARATOR, "e"])  # the oldest turn is past the history; a turn keeps its end
    hierarchical = Preprocessing(vocab(), hierarchical=True, history=3, max_turn_len=2)
    assert hierarchical.encode_context([["a"], ["b", "c", "d"]]) == [ids(["a"]), ids(["c", "d"])]
    assert hierarchical.encode_response(["a", "b", "c"]) == ids(["a", "b"])  # a response keeps its start


def test_hierarchical_source_tensors_pad_turns_and_tokens():
    src_ids, src_mask = source_tensors([[[5, 6, 7]], [[5], [8, 9]]], hierarchical=True)
    assert src_ids.shape == (2, 2, 3)
    assert src_mask.tolist() == [[[True, True, True], [False, False, False]],
                                 [[True, False, False], [True, True, False]]]


# ------------------------------------------------------------------------------------------------ the model
def tiny_hred(**options) -> HRED:
    torch.manual_seed(0)
    config = HREDConfig(**{"embedding_size": 8, "hidden_size": 6, "num_layers": 1, "dropout": 0.0, **options})
    return HRED(config, vocab_size=12).eval()


@pytest.mark.parametrize("options", [{}, {"cell": "lstm", "num_layers": 2},
                                     {"attention": "general", "attend_to": "turns"},
                                     {"attention": "additive", "attend_to": "tokens", "attention_use": "input_feeding"}])
def test_an_examples_log_probs_do_not_depend_on_its_batch(options):
    """Padding of turns and tokens never enters a recurrence: a short history alone or beside a longer one gives
    the same teacher-forced log-probs (the readable twin of the packed encoders)."""
    model = tiny_hred(**options)
    short, long = [[4, 5]], [[6, 7, 8, 9], [10], [4, 11, 5]]
    target = torch.tensor([[2, 7, 8]])
    alone_ids, alone_mask = source_tensors([short], hierarchical=True)
    both_ids, both_mask = source_tensors([short, long], hierarchical=True)
    alone = model(alone_ids, alone_mask, target)
    together = model(both_ids, both_mask, target.expand(2, -1))[:1]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)


def test_every_turn_reaches_the_decoder_through_the_context_encoder():
    model = tiny_hred().train()
    src_ids, src_mask = source_tensors([[[4, 5], [6, 7], [8]]], hierarchical=True)
    logits = model(src_ids, src_mask, torch.tensor([[2, 9]]))
    logits.sum().backward()
    assert model.context_encoder.weight_ih_l0.grad.abs().sum() > 0
    first_turn_words = model.src_embedding.weight.grad[[4, 5]]
    assert first_turn_words.abs().sum() > 0  # the oldest turn matters, not only the last one
    changed = src_ids.clone()
    changed[0, 0, 0] = 10  # another first word of the oldest turn changes the reply's distribution
    assert not torch.allclose(model.eval()(src_ids, src_mask, torch.tensor([[2, 9]])),
                              model(changed, src_mask, torch.tensor([[2, 9]])))


def test_step_by_step_equals_teacher_forcing():
    model = tiny_hred(attention="general", attend_to="tokens")
    src_ids, src_mask = source_tensors([[[4, 5], [6]], [[7, 8, 9]]], hierarchical=True)
    target = torch.tensor([[2, 4, 5], [2, 6, 7]])
    forced = torch.log_softmax(model(src_ids, src_mask, target), dim=-1)
    state = model.init_state(model.encode(src_ids, src_mask), src_mask)
    for t in range(target.size(1)):
        log_probs, state = model.step(target[:, t], state)
        torch.testing.assert_close(log_probs, forced[:, t], rtol=1e-5, atol=1e-5)


def test_hred_refuses_what_has_no_meaning_for_it():
    with pytest.raises(ConfigError, match="init_decoder: 'last'"):
        HREDConfig(init_decoder="last")
    with pytest.raises(ConfigError, match="attend_to"):
        HREDConfig(attend_to="words")


# ------------------------------------------------------------------------------------------------ metrics
def test_distinct_n_by_hand():
    responses = [["i", "am", "fine"], ["i", "am", "ok"]]
    assert distinct_n(responses, 1) == 4 / 6  # i, am, fine, ok over six unigrams
    assert distinct_n(responses, 2) == 3 / 4  # (i am) twice, (am fine), (am ok)
    assert distinct_n([[]], 2) == 0.0


def test_response_bleu_is_sacrebleus_corpus_bleu_on_the_tokens():
    hyps = [["i", "am", "fine", "."], ["see", "you", "."]]
    refs = [["i", "am", "fine", ",", "thanks", "."], ["see", "you", "soon", "."]]
    scores = response_metrics(hyps, refs)
    expected = sacrebleu.metrics.BLEU(tokenize="none", max_ngram_order=2, force=True).corpus_score(
        [" ".join(h) for h in hyps], [[" ".join(r) for r in refs]])
    assert scores["bleu_2"] == pytest.approx(expected.score)
    assert scores["mean_length"] == 3.5


# ------------------------------------------------------------------------------------------------ chat
class EchoResponder:
    """Replies 'reply N' and records every history it was given."""

    def __init__(self):
        self.seen: list[list[str]] = []

    def reply(self, histories):
        self.seen.append(list(histories[0]))
        return [Reply(f"reply {len(self.seen)}", [], 0.0, [])]


def test_the_conversation_keeps_the_last_k_turns_both_sides():
    responder = EchoResponder()
    conversation = Conversation(responder, history=3)
    assert conversation.say("hello") == "reply 1"
    conversation.say("how are you")
    conversation.say("bye")
    assert responder.seen == [["hello"], ["hello", "reply 1", "how are you"], ["how are you", "reply 2", "bye"]]
    conversation.reset()
    conversation.say("again")
    assert responder.seen[-1] == ["again"]


def test_reset_after_every_reply_makes_every_turn_its_own_dialogue():
    responder = EchoResponder()
    conversation = Conversation(responder, history=3, reset=True)
    conversation.say("a")
    conversation.say("b")
    assert responder.seen == [["a"], ["b"]]
