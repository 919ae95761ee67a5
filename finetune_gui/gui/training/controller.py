"""TrainingController: drives one training run for the dashboard and turns its events into signals.

It either starts the run (``start``: ``finetune-gui train CONFIG --events jsonl`` as a ChildProcess that
outlives the window if asked) or follows one that an earlier window started (``attach``: it replays and
tails the run folder's events.jsonl and watches the process by its pid). Both ways the same events
arrive on the same past-tense signals, and the same controls work: pause, resume and stop go through
the run folder's control file, which the training process checks between steps, so a run can be
stopped and saved after the window that started it is gone. ``detach`` lets the run train on.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from finetune_gui.core.errors import FailureKind
from finetune_gui.core.events import (
    Alert,
    Checkpoint,
    Eval,
    Failed,
    Finished,
    Forgetting,
    Learned,
    Log,
    Paused,
    Resumed,
    Sample,
    Started,
    Step,
    event_from_dict,
)
from finetune_gui.core.runs import RunFolder, process_alive
from finetune_gui.core.training.control import STARTED_ENV
from finetune_gui.core.training.failures import exit_code_sentence
from finetune_gui.gui.child import ChildProcess

FOLLOW_MS = 300


class TrainingController(QObject):
    started_run = Signal(object)  # Started
    step_logged = Signal(object)  # Step
    evaluated = Signal(object)  # Eval
    checkpointed = Signal(object)  # Checkpoint
    sampled = Signal(object)  # Sample
    learned = Signal(object)  # Learned: did it learn?
    forgetting = Signal(object)  # Forgetting: did it forget?
    alerted = Signal(object)  # Alert: something in the curves needs attention
    paused = Signal(object)  # Paused
    resumed = Signal(object)  # Resumed
    logged = Signal(str)  # a line for the log pane
    finished_run = Signal(object)  # Finished
    failed_run = Signal(object)  # Failed, also made up here when the process dies without one
    ended = Signal()  # after finished_run or failed_run: nothing more will come

    def __init__(self, run_dir: str | Path, parent: QObject | None = None):
        super().__init__(parent)
        self.folder = RunFolder(run_dir)
        self.child: ChildProcess | None = None
        self.config_path: str | None = None
        self.resume = False
        self.env: dict[str, str] | None = None
        self.mode = "idle"  # idle | live | attached | detached
        self.replaying = False  # reading back what a followed run emitted before this window came
        self.terminal: Finished | Failed | None = None
        self.done = False
        self._pid: int | None = None
        self._offset = 0
        self._follow = QTimer(self)
        self._follow.setInterval(FOLLOW_MS)
        self._follow.timeout.connect(self._poll)

    # -- starting or following
    def start(
        self,
        config_path: str | Path,
        *,
        resume: bool = False,
        num_processes: int = 1,
        env: dict[str, str] | None = None,
    ) -> TrainingController:
        self.config_path, self.resume, self.env = str(config_path), resume, env
        args = ["train", self.config_path, "--events", "jsonl"]
        if resume:
            args.append("--resume")
        if num_processes > 1:
            args += ["--num-processes", str(num_processes)]
        # The words of an earlier session (its Stop) must not reach this one: cleared, and the run is told
        # when it started, so it ignores anything older.
        self.folder.clear_request()
        run_env = dict(os.environ if env is None else env)
        run_env[STARTED_ENV] = str(time.time_ns())
        self.child = ChildProcess(
            args, self, env=run_env, log_path=self.folder.log_path, survives_window=True
        )
        self.child.line_received.connect(self._on_line)
        self.child.ended.connect(self._on_child_ended)
        self.mode = "live"
        self.child.start()
        if self.child.pid is not None:
            _lower_priority(self.child.pid)
        return self

    def attach(self) -> TrainingController:
        """Follow a run that trains in the background: everything it emitted so far, then what comes."""
        self._pid = self.folder.read().pid
        self.mode = "attached"
        # What the run emitted before this window came: its log lines carry no clock time of ours.
        self.replaying = True
        try:
            self._poll()
        finally:
            self.replaying = False
        if not self.done:
            self._follow.start()
        return self

    # -- control
    def pause(self) -> None:
        self.folder.request("pause")

    def resume_run(self) -> None:
        self.folder.request("run")

    def stop(self) -> None:
        """Stop after the current step; the run saves its adapter and a checkpoint."""
        self.folder.request("stop")

    def kill(self) -> None:
        """The last resort: end the process now (the last checkpoint stays resumable)."""
        if self.child is not None:
            self.child.kill()
        elif self._pid is not None and process_alive(self._pid):
            import psutil

            psutil.Process(self._pid).kill()

    def detach(self) -> None:
        """Let the run train on without this window."""
        if self.child is not None:
            self.child.detach()
        self._follow.stop()
        self.mode = "detached"

    def is_running(self) -> bool:
        """Until its process has exited (live: a moment after the final event), or, followed, until the
        run has ended."""
        if self.mode == "live" and self.child is not None:
            return self.child.is_running()
        return self.mode == "attached" and not self.done

    def wait(self, timeout_s: float) -> bool:
        """Block until the process has exited (closing the window with 'Stop and save')."""
        if self.child is not None:
            return self.child.wait(timeout_s)
        import time

        deadline = time.monotonic() + timeout_s
        while self._pid is not None and process_alive(self._pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    # -- events
    def _on_line(self, data: dict) -> None:
        event = event_from_dict(data)
        if event is None or self.done:
            return
        if isinstance(event, Step):
            self.step_logged.emit(event)
        elif isinstance(event, Started):
            self.started_run.emit(event)
        elif isinstance(event, Eval):
            self.evaluated.emit(event)
        elif isinstance(event, Checkpoint):
            self.checkpointed.emit(event)
        elif isinstance(event, Sample):
            self.sampled.emit(event)
        elif isinstance(event, Learned):
            self.learned.emit(event)
        elif isinstance(event, Forgetting):
            self.forgetting.emit(event)
        elif isinstance(event, Alert):
            self.alerted.emit(event)
        elif isinstance(event, Paused):
            self.paused.emit(event)
        elif isinstance(event, Resumed):
            self.resumed.emit(event)
        elif isinstance(event, Log):
            self.logged.emit(event.message)
        elif isinstance(event, (Finished, Failed)):
            self._end(event)

    def _end(self, event: Finished | Failed) -> None:
        if self.done:
            return
        self.terminal = event
        self.done = True
        self._follow.stop()
        if isinstance(event, Finished):
            self.finished_run.emit(event)
        else:
            self.failed_run.emit(event)
        self.ended.emit()

    def _on_child_ended(self, code: int, _sentence: str) -> None:
        if not self.done:
            self._end(self._unexplained_end(code))

    def _unexplained_end(self, code: int | None) -> Failed:
        """The process is gone without a final event: killed, or crashed in native code."""
        message = exit_code_sentence(code)
        checkpoint = self.folder.last_checkpoint()
        advice = (
            [f"The last checkpoint is {checkpoint.name}: Resume continues from it."] if checkpoint else []
        )
        return Failed(kind_=FailureKind.CRASH.value, message=message, advice=advice)

    def _poll(self) -> None:
        """Attached: read what the run appended to events.jsonl; notice when its process is gone."""
        alive = self._pid is not None and process_alive(self._pid)
        for data in self._new_lines():
            self._on_line(data)
        if self.done or alive:
            return
        info = self.folder.read()  # ended without a final event in the file: run.json may say how
        if info.status in ("completed", "stopped"):
            self._end(Finished(status=info.status, metrics=info.metrics, output_path=info.output))
        elif info.status == "failed":
            self._end(
                Failed(
                    kind_=info.error_kind or FailureKind.CRASH.value,
                    message=info.error_message or "",
                    advice=list(info.advice),
                )
            )
        else:
            self._end(self._unexplained_end(None))

    def _new_lines(self) -> list[dict]:
        try:
            with self.folder.events_path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self._offset += len(complete)
        found = []
        for line in complete.splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                found.append(data)
        return found


def _lower_priority(pid: int) -> None:
    """Training yields the CPU to the window: on a machine whose cores it saturates, the event loop
    would otherwise wait for the scheduler (stalls of 50 ms and more were measured here)."""
    try:
        import psutil

        process = psutil.Process(pid)
        if hasattr(psutil, "BELOW_NORMAL_PRIORITY_CLASS"):  # Windows
            process.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            process.nice(10)
    except Exception:  # a priority is a courtesy; some systems refuse it
        pass
