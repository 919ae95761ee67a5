"""One client for this app's child processes: start one, receive its JSON lines as dicts, learn how it
ended (the exit code and the one sentence it printed), write to its stdin, cancel it, or detach from it
and let it run on.

Every child (the training process, the playground's generator, the short commands behind the wizard)
goes through ``ChildProcess``. A reader thread per stream only moves lines into a queue; a timer in the
GUI thread drains it and emits the signals, so no signal crosses threads (queued cross-thread signals
into Python slots crashed PySide6 6.12). The reader polls with a timeout, so ``detach`` can stop it
cleanly while the child keeps writing: the window can close while a run trains on.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QTimer, Signal

from finetune_gui.core.errors import parse_error
from finetune_gui.core.processes import TORCH_COMMANDS, child_env, self_command

DRAIN_MS = 25
TAIL_LINES = 400


class ChildProcess(QObject):
    """``python -m finetune_gui ARGS`` (or the frozen executable) as a child. Signals, in the GUI thread:
    ``line_received(dict)`` for every JSON object line on stdout; ``ended(exit_code, sentence)`` once,
    after the last line, where ``sentence`` is the error the command printed ('' when it said none)."""

    line_received = Signal(object)
    ended = Signal(int, str)

    # The children at work now: the training process, the playground's generator, short commands.
    running: ClassVar[set[ChildProcess]] = set()

    def __init__(
        self,
        args: list[str],
        parent: QObject | None = None,
        *,
        env: dict[str, str] | None = None,
        stdin: bool = False,
        log_path: str | Path | None = None,
        survives_window: bool = False,
        collect: bool = False,
    ):
        super().__init__(parent)
        self.args = args
        self.env = env
        self.wants_stdin = stdin
        self.log_path = Path(log_path) if log_path else None
        self.survives_window = survives_window  # its own session: it outlives the window if asked
        self.collect = collect  # keep all of stdout (a command that prints one multi-line JSON)
        # It trains, generates, merges or measures with torch: thread counts are shared with it. Derived
        # from the command (core/processes.TORCH_COMMANDS), never passed: a merge started without the
        # flag once took every core beside a training run.
        self.torch_process = bool(args) and args[0] in TORCH_COMMANDS
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout_text: list[str] = []
        self.stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.cancelled = False
        self.detached = False
        self.exit_code: int | None = None
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stop_reading = threading.Event()
        self._readers: list[threading.Thread] = []
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self._drain)

    # -- starting
    def start(self) -> ChildProcess:
        sharing = 1
        if self.torch_process:
            from finetune_gui.core.processes import others_running

            sharing += sum(1 for c in ChildProcess.running if c.torch_process) + others_running()
        env = child_env(sharing, self.env)
        stderr: Any = subprocess.PIPE
        log = None
        if self.log_path is not None:
            # A file, not a pipe: if the window goes away, nothing the process writes can fail.
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
            stderr = log
        try:
            self.process = subprocess.Popen(
                self_command(*self.args),
                stdin=subprocess.PIPE if self.wants_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                start_new_session=self.survives_window,
            )
        except OSError as exc:
            self._inbox.put(("failed-to-start", f"Could not start {sys.executable}: {exc.strerror}."))
            self._timer.start()
            return self
        finally:
            if log is not None:
                log.close()
        ChildProcess.running.add(self)
        streams = [(self.process.stdout, "out")]
        if self.log_path is None:
            streams.append((self.process.stderr, "err"))
        self._readers = [
            threading.Thread(target=self._read, args=(stream, name), name=f"child-{name}", daemon=True)
            for stream, name in streams
        ]
        for thread in self._readers:
            thread.start()
        self._timer.start()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.exit_code is None and not self.detached

    # -- talking to it
    def write(self, message: dict[str, Any] | str) -> bool:
        """One line on the child's stdin; False when it cannot take it (gone, or no stdin)."""
        if self.process is None or self.process.stdin is None or self.process.poll() is not None:
            return False
        line = message if isinstance(message, str) else json.dumps(message)
        try:
            self.process.stdin.write((line + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    # -- ending
    def cancel(self) -> None:
        """Kill it now; ``ended`` still follows, with ``cancelled`` set."""
        if self.is_running():
            self.cancelled = True
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def wait(self, timeout_s: float) -> bool:
        """Block until the process has exited (tests, and closing the window with 'Stop and save')."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def detach(self) -> None:
        """Stop listening and let the child run on (its stdout closes: it must cope, as the trainer does)."""
        if self.process is None or self.detached:
            return
        self.detached = True
        self._stop_reading.set()
        for thread in self._readers:
            thread.join(timeout=2.0)
        self._timer.stop()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        ChildProcess.running.discard(self)

    # -- reading (threads) and draining (GUI thread)
    def _read(self, stream: Any, name: str) -> None:
        fd = stream.fileno()
        pending = b""
        while not self._stop_reading.is_set():
            if os.name == "posix":
                import select

                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._inbox.put((name, line.decode("utf-8", "replace")))
        if pending and not self._stop_reading.is_set():
            self._inbox.put((name, pending.decode("utf-8", "replace")))
        if name == "out" and not self._stop_reading.is_set():
            for thread in self._readers[1:]:
                thread.join(timeout=5.0)
            code = self.process.wait() if self.process else -1
            self._inbox.put(("exit", code))

    def _drain(self) -> None:
        while True:
            try:
                kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "out":
                if self.collect:
                    self.stdout_text.append(payload)
                if payload.startswith("{"):
                    try:
                        data = json.loads(payload)
                    except ValueError:
                        continue
                    if isinstance(data, dict):
                        self.line_received.emit(data)
            elif kind == "err":
                if payload.strip():
                    self.stderr_tail.append(payload.rstrip())
            elif kind == "failed-to-start":
                self._finish(-1, str(payload))
                return
            else:
                self._finish(int(payload), "" if payload == 0 else error_sentence(list(self.stderr_tail)))
                return

    def _finish(self, code: int, sentence: str) -> None:
        self._timer.stop()
        self.exit_code = code
        ChildProcess.running.discard(self)
        self.ended.emit(code, sentence)


def error_sentence(stderr_lines: list[str]) -> str:
    """The command's one-sentence error (``finetune-gui: …``) without its prefix, else its last line."""
    return parse_error(stderr_lines)
