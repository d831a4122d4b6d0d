"""What the Trainer tells its user: readable or JSON-lines progress lines, the same epoch count in the log and
the summary, how to resume after Ctrl-C, a time budget that includes the final validation, TensorBoard events."""

import json

import pytest
import torch

from seqlab.train import trainer as trainer_module
from seqlab.train.events import EventWriter, tensorboard_available
from seqlab.train.trainer import Progress, TrainConfig, Trainer, TrainingInterrupted, format_record
from tests.unit.test_trainer import ToySource, ToyTask, toy_model  # 96 examples, batches of 8: 12 per epoch


def make_trainer(model_dir, validate=None, task=None, **overrides) -> Trainer:
    config = TrainConfig(**{"lr": 0.01, "max_epochs": 3, "progress": False, "log_every": 5, "tensorboard": False,
                            **overrides})
    return Trainer(toy_model(), task or ToyTask(), config, model_dir, validate=validate, device=torch.device("cpu"))


def log_records(model_dir):
    return [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


def test_progress_lines_are_text_or_json_never_a_dict_repr():
    record = {"event": "validate", "step": 300, "epoch": 2, "elapsed_seconds": 79.73, "loss": 3.0509911,
              "ppl": 21.136283, "bleu": 0.3288, "best": True}
    text = format_record(record)
    assert text.startswith("validate") and "step 300" in text and "ppl 21.14" in text and text.endswith("(best)")
    assert "{" not in text and "'" not in text
    assert json.loads(format_record(record, "json")) == record
    with pytest.raises(Exception, match="log_format"):
        TrainConfig(log_format="xml")


def test_the_summary_and_the_log_count_epochs_alike(tmp_path):
    assert Progress(epoch=2, batch_in_epoch=5).epochs_seen == 3  # stopped inside the 3rd epoch
    assert Progress(epoch=3, batch_in_epoch=0).epochs_seen == 3  # finished 3 epochs
    trainer = make_trainer(tmp_path / "steps", max_steps=30)  # 30 updates = 2.5 epochs
    progress = trainer.fit(ToySource())
    stop = log_records(tmp_path / "steps")[-1]
    assert stop["event"] == "stop" and stop["epoch"] == progress.epochs_seen == 3
    trainer = make_trainer(tmp_path / "epochs", max_epochs=2)
    progress = trainer.fit(ToySource())
    assert log_records(tmp_path / "epochs")[-1]["epoch"] == progress.epochs_seen == 2


class InterruptingTask(ToyTask):
    """Ctrl-C arrives during update ``at``."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().loss(model, batch)


def test_ctrl_c_says_which_update_is_saved_and_how_to_resume(tmp_path):
    trainer = make_trainer(tmp_path, task=InterruptingTask(at=14), checkpoint_every=10)  # and at the end of epoch 1 (12)
    with pytest.raises(TrainingInterrupted) as raised:
        trainer.fit(ToySource())
    message = str(raised.value)
    assert "stopped at update 13" in message and "last.pt holds update 12" in message and "--resume" in message
    early = make_trainer(tmp_path / "early", task=InterruptingTask(at=3))
    with pytest.raises(KeyboardInterrupt, match="before any checkpoint"):
        early.fit(ToySource())


class FakeClock:
    """``time.perf_counter`` that moves only when told: a training step costs 1 s, a validation 10 s."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_time_budget_includes_the_final_validation(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(trainer_module.time, "perf_counter", clock)

    class SlowStepTask(ToyTask):
        def loss(self, model, batch):
            clock.now += 1.0
            return super().loss(model, batch)

    def validate(model):
        clock.now += 10.0
        return {"loss": 1.0}

    trainer = make_trainer(tmp_path, validate=validate, task=SlowStepTask(), max_minutes=0.5, max_epochs=100)
    start = clock.now
    progress = trainer.fit(ToySource())
    assert progress.stop_reason == "max_minutes=0.5"
    # 30 s in all: 10 s validating the initial model, 10 s for the final validation, 10 updates between
    assert clock.now - start <= 30.0 + 1.0 and progress.step == 10
    events = [r["event"] for r in log_records(tmp_path)]
    assert events.count("validate") == 2 and events[-1] == "stop"


@pytest.mark.skipif(not tensorboard_available(), reason="the optional tensorboard extra is not installed")
def test_tensorboard_event_files_beside_the_log(tmp_path):
    trainer = make_trainer(tmp_path, validate=lambda model: {"loss": 0.5}, tensorboard=True, max_epochs=2)
    trainer.fit(ToySource())
    assert list(tmp_path.glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert {"train/loss", "train/lr", "valid/loss"} <= set(events.Tags()["scalars"])
    assert [e.value for e in events.Scalars("valid/loss")] == [0.5, 0.5]


def test_without_tensorboard_training_says_so_and_writes_no_events(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("seqlab.train.events.tensorboard_available", lambda: False)
    writer = EventWriter(tmp_path, enabled=True, announce=True)
    writer.write({"event": "train", "step": 1, "loss": 1.0})
    writer.close()
    assert not writer.active and not list(tmp_path.iterdir())
    assert "no TensorBoard event files" in capsys.readouterr().err
