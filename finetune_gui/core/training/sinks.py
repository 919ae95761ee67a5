"""Where training events go: JSON lines on stdout, or a progress bar for people at a terminal."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from finetune_gui.core.errors import error_line
from finetune_gui.core.events import Checkpoint, Eval, Event, Failed, Finished, Log, Paused, Started, Step


class JsonlSink:
    """One JSON object per line. If the reader goes away (the window closed while the run goes on in
    the background), events stop but training continues: the run folder records everything."""

    def __init__(self, stream: TextIO | None = None):
        self.stream: TextIO | None = stream or sys.stdout

    def emit(self, event: Event) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(event.to_json() + "\n")
            self.stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.stream = None

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.stream = None


class TeeSink:
    """Every event to the first sink, and a copy appended to the run folder's events.jsonl, so a window
    that did not start the run can follow all of it. Copies are held back until ``release`` (the run
    has passed its checks and owns the folder): a refused resume leaves the folder as it was. Copy
    failures never stop the run."""

    def __init__(self, sink: Any, folder: Any):
        self.sink = sink
        self.folder = folder
        self.copying = True
        self.held: list[Event] | None = []

    def emit(self, event: Event) -> None:
        self.sink.emit(event)
        if self.held is not None:
            self.held.append(event)
        elif self.copying:
            self._copy(event)

    def release(self) -> None:
        held, self.held = self.held or [], None
        for event in held:
            self._copy(event)

    def _copy(self, event: Event) -> None:
        if not self.copying:
            return
        try:
            self.folder.append_event(event)
        except OSError:
            self.copying = False  # the disk is full or gone: the run's own files say the rest

    def close(self) -> None:
        self.sink.close()


class ProgressBarSink:
    """A tqdm bar with loss and speed; everything else as short lines above it."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.bar: Any = None

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def emit(self, event: Event) -> None:
        from tqdm import tqdm

        if isinstance(event, Started):
            pct = 100.0 * event.trainable_parameters / max(1, event.total_parameters)
            self._write(
                f"Training {event.config.get('method')} on {event.device} ({event.precision}): "
                f"{event.trainable_parameters:,} trainable parameters ({pct:.2f}%), {event.train_rows:,} rows"
            )
            self.bar = tqdm(total=event.max_steps, initial=event.start_step, unit="step", file=self.stream)
        elif isinstance(event, Step) and self.bar is not None:
            self.bar.update(event.step - self.bar.n)
            postfix = {}
            if event.loss is not None:
                postfix["loss"] = f"{event.loss:.4f}"
            if event.tokens_per_s:
                postfix["tok/s"] = f"{event.tokens_per_s:.0f}"
            self.bar.set_postfix(postfix)
        elif isinstance(event, Eval):
            self._write(f"step {event.step}: eval loss {event.eval_loss:.4f}")
        elif isinstance(event, Checkpoint):
            self._write(f"step {event.step}: checkpoint saved in {event.path}")
        elif isinstance(event, Paused):
            self._write(f"paused at step {event.step}")
        elif isinstance(event, Log):
            self._write(event.message)
        elif isinstance(event, Finished):
            self.close()
            where = f" Result in {event.output_path}." if event.output_path else ""
            self._write(f"Training {event.status}.{where}")
        elif isinstance(event, Failed):
            self.close()
            self._write(error_line(event.message))  # the one sentence, as every command says it
            for line in event.advice:
                self._write(f"  - {line}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
