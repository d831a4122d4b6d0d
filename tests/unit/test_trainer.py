"""The generic Trainer: exact accounting, schedules, checkpoints, exact resume (also after SIGKILL)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from seqlab.commands.average import average_files
from seqlab.errors import CheckpointError
from seqlab.train.checkpoint import average_state_dicts, load_checkpoint, save_checkpoint
from seqlab.train.optim import lr_multiplier
from seqlab.train.trainer import TrainConfig, Trainer, snapshot_paths

TOY = textwrap.dedent('''
    import time
    from dataclasses import dataclass
    import torch

    @dataclass
    class ToyBatch:
        x: torch.Tensor
        y: torch.Tensor
        def to(self, device):
            return ToyBatch(self.x.to(device), self.y.to(device))

    class ToySource:
        """Deterministic per epoch; different order each epoch."""
        def __init__(self, n=96, batch=8, seed=0):
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randn(n, 6, generator=g)
            self.y = (self.x.sum(1) > 0).long()
            self.batch, self.seed = batch, seed
        def epoch_batches(self, epoch):
            order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed + epoch))
            return [ToyBatch(self.x[order[i:i + self.batch]], self.y[order[i:i + self.batch]])
                    for i in range(0, len(order), self.batch)]

    class ToyTask:
        def __init__(self, delay=0.0):
            self.delay = delay
        def loss(self, model, batch):
            if self.delay:
                time.sleep(self.delay)
            logits = model(batch.x)
            return torch.nn.functional.cross_entropy(logits, batch.y, reduction="sum"), len(batch.y)

    def toy_model():
        torch.manual_seed(0)
        # dropout makes the run depend on the RNG state, which resume must restore
        return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                   torch.nn.Linear(16, 2))
''')
exec(TOY)  # the same definitions in this module and in the SIGKILL subprocess


def make_trainer(model_dir, **overrides) -> Trainer:
    config = TrainConfig(**{"lr": 0.01, "max_epochs": 3, "progress": False, "log_every": 5, **overrides})
    return Trainer(toy_model(), ToyTask(), config, model_dir, extra={"note": "toy"}, device=torch.device("cpu"))


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_reduces_the_loss_and_writes_logs(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=8)
    source = ToySource()
    first = trainer.train_step(source.epoch_batches(0)[0])
    trainer.fit(source)
    losses = [trainer.task.loss(trainer.model.eval(), b)[0].item() / len(b.y) for b in source.epoch_batches(0)]
    assert sum(losses) / len(losses) < first * 0.7
    log = (tmp_path / "train_log.jsonl").read_text().splitlines()
    assert any('"event": "train"' in line for line in log) and '"event": "stop"' in log[-1]
    assert (tmp_path / "last.pt").is_file()
    assert trainer.progress.stop_reason == "max_epochs=8"


def test_resume_in_process_gives_identical_weights(tmp_path):
    straight = make_trainer(tmp_path / "a")
    straight.fit(ToySource())
    interrupted = make_trainer(tmp_path / "b", max_steps=17, checkpoint_every=1)  # stops mid-epoch 2
    interrupted.fit(ToySource())
    assert interrupted.progress.batch_in_epoch == 5
    resumed = make_trainer(tmp_path / "b")
    resumed.resume()
    assert resumed.progress.step == 17
    resumed.fit(ToySource())
    assert resumed.progress.step == straight.progress.step == 36
    assert_same_weights(weights(straight.model), weights(resumed.model))


def test_resume_after_sigkill_mid_epoch_gives_identical_weights(tmp_path):
    straight = make_trainer(tmp_path / "straight")
    straight.fit(ToySource())
    script = TOY + textwrap.dedent(f'''
        from seqlab.train.trainer import TrainConfig, Trainer, snapshot_paths
        config = TrainConfig(lr=0.01, max_epochs=3, progress=False, log_every=5, checkpoint_every=1)
        trainer = Trainer(toy_model(), ToyTask(delay=0.05), config, {str(tmp_path / "killed")!r},
                          device=torch.device("cpu"))
        trainer.fit(ToySource())
    ''')
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    checkpoint = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 60
    while time.time() < deadline:
        if checkpoint.is_file() and 14 <= load_checkpoint(checkpoint)["trainer"]["step"] < 30:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_checkpoint(checkpoint)["trainer"]["step"]
    assert 12 < killed_at < 36, killed_at  # mid-epoch 2 or 3: not finished
    resumed = make_trainer(tmp_path / "killed")
    resumed.resume()
    resumed.fit(ToySource())
    assert_same_weights(weights(straight.model), weights(resumed.model))


def test_validation_keeps_best_and_stops_early(tmp_path):
    scores = iter([1.0, 3.0, 2.0, 2.5, 2.9, 5.0])
    trainer = make_trainer(tmp_path, max_epochs=20, early_stopping_metric="bleu", patience=3)
    trainer.validate_fn = lambda model: {"bleu": next(scores), "loss": 0.0}
    trainer.fit(ToySource())
    assert trainer.progress.best_metric == 3.0
    assert "early stopping" in trainer.progress.stop_reason
    assert trainer.progress.epoch == 5  # validations after epochs 1..5: best at 2, then 3 worse
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["trainer"]["best_metric"] == 3.0 and best["extra"] == {"note": "toy"}


def test_gradient_clipping_by_norm_bounds_the_update(tmp_path):
    trainer = make_trainer(tmp_path, clip_norm=1e-3, optimizer="sgd", lr=1.0)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer.train_step(ToySource().epoch_batches(0)[0])
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize("schedule, step, expected", [
    ("constant", 10, 1.0), ("warmup_linear", 5, 0.5), ("warmup_linear", 50, 1.0),
    ("step", 25, 0.25), ("inverse_sqrt", 40, (10 / 40) ** 0.5), ("noam", 10, 512 ** -0.5 * 10 * 10 ** -1.5),
])
def test_schedules(schedule, step, expected):
    warmup = 10 if schedule in ("warmup_linear", "inverse_sqrt", "noam") else 0
    assert lr_multiplier(schedule, step, warmup, decay_every=10, gamma=0.5) == pytest.approx(expected)


def test_checkpoint_errors_and_atomicity(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}})
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
    path.write_bytes(path.read_bytes()[:40])  # truncated, as by a crash of a non-atomic writer
    with pytest.raises(CheckpointError, match=r"not a seqlab checkpoint \(or corrupted\)"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    assert not list(tmp_path.glob("*.tmp"))


def test_average_of_identical_checkpoints_is_the_checkpoint():
    state = toy_model().state_dict()
    averaged = average_state_dicts([state, state, state])
    for key in state:
        assert torch.allclose(averaged[key], state[key])
    with pytest.raises(CheckpointError):
        average_state_dicts([state, {"other": torch.zeros(1)}])


def test_keep_last_leaves_the_newest_snapshots_and_they_average(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=5, keep_last=2, early_stopping_metric="loss")
    trainer.validate_fn = lambda model: {"loss": 1.0}
    trainer.fit(ToySource())  # 12 updates per epoch, one validation after each
    snapshots = snapshot_paths(tmp_path)
    assert [p.name for p in snapshots] == ["snapshot-00000048.pt", "snapshot-00000060.pt"]
    last = load_checkpoint(snapshots[-1])
    assert "optimizer" not in last and last["extra"] == {"note": "toy"}
    assert_same_weights(last["model"], trainer.model.state_dict())
    average_files(snapshots, tmp_path / "avg")
    averaged = load_checkpoint(tmp_path / "avg" / "best.pt")["model"]
    earlier = load_checkpoint(snapshots[0])["model"]
    for key, value in averaged.items():
        assert torch.allclose(value, (earlier[key] + last["model"][key]) / 2)
