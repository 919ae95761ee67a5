"""TrainingController: a QThread that owns one training process and turns its events into signals.

It starts ``python -m finetune_gui train CONFIG --events jsonl`` (with ``--num-processes N`` for
several workers) and reads one JSON event per line. The thread only puts lines on a queue; a timer in
the GUI thread (where the controller object lives) drains it, parses each line and emits the matching
dataclass on a past-tense signal. No signal crosses threads: queued cross-thread signals into Python
slots crashed PySide6 6.12 here with a reference-count error after a few hundred events. Pause, resume and stop go to the process's stdin; ``kill`` is the last resort. A crash of the
process (or of a native library in it) ends the run, never the window.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections import deque
from pathlib import Path

from PySide6.QtCore import QThread, QTimer, Signal

from finetune_gui.core.events import (
    Checkpoint,
    Eval,
    Failed,
    Finished,
    Log,
    Paused,
    Resumed,
    Sample,
    Started,
    Step,
    parse_event,
)
from finetune_gui.core.processes import self_command

LOG_TAIL = 200
DRAIN_MS = 50


class TrainingController(QThread):
    started_run = Signal(object)  # Started
    step_logged = Signal(object)  # Step
    evaluated = Signal(object)  # Eval
    checkpointed = Signal(object)  # Checkpoint
    sampled = Signal(object)  # Sample
    paused = Signal(object)
    resumed = Signal(object)
    logged = Signal(str)  # a line for the log pane (events' messages and the process's stderr)
    finished_run = Signal(object)  # Finished
    failed_run = Signal(object)  # Failed, also made up here when the process dies without one

    def __init__(
        self,
        config_path: str | Path,
        log_path: str | Path,
        *,
        resume: bool = False,
        num_processes: int = 1,
        env: dict[str, str] | None = None,
        parent=None,
    ):
        super().__init__(parent)
        self.config_path = str(config_path)
        self.log_path = Path(log_path)
        self.resume = resume
        self.num_processes = num_processes
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.stderr_tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._lock = threading.Lock()
        self.ended = False
        self.terminal: object | None = None
        self._inbox: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(DRAIN_MS)
        self._drain_timer.timeout.connect(self._drain)

    def start(self, *args) -> None:
        self._drain_timer.start()
        super().start(*args)

    def command(self) -> list[str]:
        cmd = self_command("train", self.config_path, "--events", "jsonl")
        if self.resume:
            cmd.append("--resume")
        if self.num_processes > 1:
            cmd += ["--num-processes", str(self.num_processes)]
        return cmd

    # -- control (called from the GUI thread)
    def _send(self, word: str) -> None:
        with self._lock:
            proc = self.process
            if proc is None or proc.poll() is not None or proc.stdin is None:
                return
            try:
                proc.stdin.write(word + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the process is ending; its exit is reported by run()

    def pause(self) -> None:
        self._send("pause")

    def resume_run(self) -> None:
        self._send("resume")

    def stop(self) -> None:
        """Stop after the current step; the run saves its adapter and a checkpoint."""
        self._send("stop")

    def kill(self) -> None:
        """The last resort: end the process now (the last checkpoint stays resumable)."""
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()

    # -- the thread
    def run(self) -> None:
        env = dict(self.env or os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # stderr goes to a file beside the run, not a pipe: if the window closes and the run goes on in
        # the background, nothing the process writes can fail; its own session keeps it from the
        # terminal's hang-up signal.
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("a", encoding="utf-8")
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                bufsize=1,
                start_new_session=True,
            )
            log.close()
        except OSError as exc:
            failure = Failed(kind_="crash", message=f"Could not start the training process: {exc}.")
            self._inbox.put(("line", failure.to_json()))
            self._inbox.put(("ended", -1))
            return
        with self._lock:
            self.process = proc
        _lower_priority(proc.pid)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                self._inbox.put(("line", line))
        code = proc.wait()
        self._read_log_tail()
        self._inbox.put(("ended", code))

    # -- in the GUI thread
    def _drain(self) -> None:
        while True:
            try:
                kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "line":
                event = parse_event(str(payload))
                if event is not None:
                    self.terminal = self._dispatch(event) or self.terminal
            else:
                self._drain_timer.stop()
                self._on_process_ended(int(payload))  # type: ignore[arg-type]
                return

    def _on_process_ended(self, code: int) -> None:
        if self.terminal is None:
            tail = list(self.stderr_tail)[-20:]
            self.failed_run.emit(
                Failed(
                    kind_="crash",
                    message=f"The training process ended unexpectedly (exit code {code}).",
                    advice=["The last lines it wrote are in the log below."] if tail else [],
                )
            )
        self.ended = True

    def _dispatch(self, event) -> object | None:
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
        elif isinstance(event, Paused):
            self.paused.emit(event)
        elif isinstance(event, Resumed):
            self.resumed.emit(event)
        elif isinstance(event, Log):
            self.logged.emit(event.message)
        elif isinstance(event, Finished):
            self.finished_run.emit(event)
            return event
        elif isinstance(event, Failed):
            self.failed_run.emit(event)
            return event
        return None

    def detach(self) -> None:
        """Let the process train on after the window closes: stop reading, leave it running."""
        with self._lock:
            if self.process is not None and self.process.stdin is not None:
                try:
                    self.process.stdin.close()
                except OSError:
                    pass

    def _read_log_tail(self) -> None:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        for line in lines[-LOG_TAIL:]:
            if line.strip() and not line.startswith(("Loading weights", "Writing model")):
                self.stderr_tail.append(line.rstrip())


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
    except Exception:
        pass
