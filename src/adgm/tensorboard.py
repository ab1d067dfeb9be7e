"""Per-epoch metrics to TensorBoard (optional: needs the ``tensorboard`` package).

The same rows as ``metrics.jsonl`` go to ``RUN_DIR/tensorboard`` as scalars, one point per
epoch; view them with ``tensorboard --logdir RUN_DIR/tensorboard``.
"""

from __future__ import annotations

from pathlib import Path

from adgm.errors import AdgmError

FOLDER = "tensorboard"


class TensorBoardLog:
    """Writes each numeric field of a metrics row as the scalar ``<field>`` at step = epoch.

    A resumed run passes ``first_epoch`` (the first epoch it will write): TensorBoard then drops
    points logged after the checkpoint by the run that stopped, so no epoch appears twice.
    """

    def __init__(self, run_dir: Path, *, first_epoch: int = 1):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise AdgmError(
                "--tensorboard needs the tensorboard package: pip install 'adgm[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(str(Path(run_dir) / FOLDER), purge_step=first_epoch)

    def write(self, row: dict[str, float]) -> None:
        epoch = int(row["epoch"])
        for name, value in row.items():
            if name != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(name, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
