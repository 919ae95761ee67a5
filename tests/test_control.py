"""The run's control words: a word left in the run folder by an earlier session never reaches a new one."""

from __future__ import annotations

import os
import time

from finetune_gui.core.runs import RunFolder
from finetune_gui.core.training.control import STARTED_ENV, RunControl, run_started_ns


def wait_for(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_stop_left_by_an_earlier_session_is_ignored_and_a_new_one_is_obeyed(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.request("stop")  # the first session's "Stop and save"
    old = time.time_ns() - 5_000_000_000
    os.utime(folder.control_path, ns=(old, old))
    control = RunControl()
    control.watch_file(folder.control_path, run_started_ns(time.time_ns()), poll_s=0.02)
    time.sleep(0.3)  # many looks at the file
    assert not control.stop_requested and not control.paused
    folder.request("pause")
    assert wait_for(lambda: control.paused)
    folder.request("run")
    assert wait_for(lambda: not control.paused)
    folder.request("stop")
    assert wait_for(lambda: control.stop_requested)


def test_the_window_and_the_launcher_say_when_the_run_started(monkeypatch):
    monkeypatch.setenv(STARTED_ENV, "7000000000")
    assert run_started_ns(9_000_000_000) == 6_900_000_000
    monkeypatch.delenv(STARTED_ENV)
    assert run_started_ns(9_000_000_000) == 8_900_000_000
