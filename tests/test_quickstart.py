"""docs/quickstart.md, run as written: every ``console`` command in a fresh HOME, its output compared
with the output the page shows.

The page's conventions, which this runner reads:

- In a ``console`` block, ``$ `` starts a command (a trailing ``\\`` continues it); the lines up to the
  next command are its output (standard output and standard error, as a terminal shows them).
- ``<!-- quickstart: background -->`` before a block: its one command keeps running (the sandbox, the
  daemon); the runner waits for the output shown, and a line starting with ``^C`` means Ctrl-C (SIGINT)
  there, the lines after it being what the command prints as it stops. A background command without
  ``^C`` is stopped with SIGINT when the page ends.
- ``<!-- quickstart: file NAME -->`` before a block: the reader saves that block as ``NAME``.
- ``sh`` blocks (installing, systemd) are not run: they need the network or root. The systemd unit they
  install is exercised by ``test_the_systemd_unit_example_runs_the_daemon_and_stops_it_with_sigterm``
  (tests/test_daemon.py).

What legitimately differs from one run to the next is normalised on both sides: times, durations,
run identifiers, days left on the certificate, and the home directory (shown as ``/home/me``). The
sandbox's port, 8443 on the page, is replaced by a free port so that the test never collides with a
running sandbox.

``QUICKSTART_OUTPUT=FILE`` writes the outputs of this run to FILE instead of comparing them, to refresh
the page after a change.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "quickstart.md"
DOC_HOME = "/home/me"
DOC_PORT = "8443"

pytestmark = pytest.mark.slow


@dataclass
class Command:
    text: str
    output: list[str]
    background: bool = False


@dataclass
class Page:
    steps: list[Command | tuple[str, str]] = field(default_factory=list)
    """Commands, and files to write (name, content), in page order."""


def parse_page(text: str) -> Page:
    page = Page()
    marker: str | None = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        found = re.fullmatch(r"<!-- quickstart: (.+?) -->", line.strip())
        if found:
            marker = found.group(1)
            index += 1
            continue
        fence = re.fullmatch(r"```(\w*)", line.strip())
        if not fence:
            index += 1
            continue
        end = lines.index("```", index + 1)
        body = lines[index + 1 : end]
        language = fence.group(1)
        if marker is not None and marker.startswith("file "):
            page.steps.append((marker.removeprefix("file "), "\n".join(body) + "\n"))
        elif language == "console":
            commands = _commands(body)
            if marker == "background":
                assert len(commands) == 1, "a background block holds one command"
                commands[0].background = True
            page.steps.extend(commands)
        marker = None
        index = end + 1
    return page


def _commands(body: list[str]) -> list[Command]:
    commands: list[Command] = []
    continuing = False
    for line in body:
        if continuing:
            commands[-1].text += "\n" + line
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            commands.append(Command(line[2:], []))
            continuing = line.endswith("\\")
        else:
            assert commands, f"output before any command: {line!r}"
            commands[-1].output.append(line)
    return commands


# ---- normalisation -------------------------------------------------------------------------------------

_VARIABLE = [
    (
        re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)?(?: (?:CET|CEST|UTC))?"),
        "<TIME>",
    ),
    (re.compile(r"\b\d{4}-\d\d-\d\d\b"), "<DATE>"),
    (re.compile(r"\bin \d+\.\d s\b"), "in <N> s"),
    (re.compile(r"\b\d+ days left"), "<N> days left"),
    (re.compile(r"\brun [0-9a-f]{8}\b"), "run <ID>"),
    (re.compile(r'"run_id": ?"[0-9a-f]{32}"'), '"run_id": "<ID>"'),
]


def normalise(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pattern, replacement in _VARIABLE:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    return out


# ---- the runner ----------------------------------------------------------------------------------------


class Shell:
    """Runs commands one by one like a terminal session: ``cd`` and ``export`` carry over."""

    def __init__(self, home: Path, port: str) -> None:
        self.home, self.port = home, port
        self.state = home / ".quickstart-state"
        self.state.mkdir()
        (self.state / "cwd").write_text(str(home))
        venv_bin = str(Path(sys.executable).parent)
        self.env = {
            "HOME": str(home),
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": "Europe/Paris",
            "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as on a terminal
            "COLUMNS": "110",
        }
        (self.state / "env").write_text("")
        self.background: list[subprocess.Popen[str]] = []

    def _script(self, command: str, *, exec_: bool) -> str:
        command = command.replace(DOC_PORT, self.port)
        prelude = f'cd "$(cat {self.state}/cwd)" && . {self.state}/env\n'
        if exec_:
            return prelude + f"exec {command}"
        return (
            prelude
            + f"{command}\n__rc=$?\npwd > {self.state}/cwd\nexport -p > {self.state}/env\nexit $__rc\n"
        )

    def run(self, command: str) -> tuple[int, list[str]]:
        done = subprocess.run(
            ["bash", "-c", self._script(command, exec_=False)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=180,
        )
        return done.returncode, self.output(done.stdout)

    def output(self, text: str) -> list[str]:
        text = text.replace(str(self.home), DOC_HOME).replace(self.port, DOC_PORT)
        return text.splitlines()

    def start(self, command: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["bash", "-c", self._script(command, exec_=True)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.background.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.background:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.background:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
            if process.stdout is not None:
                process.stdout.close()


class Reader:
    """Collects a background process's output lines in a thread."""

    def __init__(self, shell: Shell, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._shell = shell
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.extend(self._shell.output(line))

    def wait_for(self, count: int, timeout: float) -> list[str]:
        """The first ``count`` lines (with ``count`` 0: whatever comes until 2 s of silence), and any
        line that follows them within 0.3 s (a surplus line shows in the comparison)."""
        deadline = time.monotonic() + timeout
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline and self._process.poll() is None:
            if len(self.lines) != seen:
                seen, quiet_since = len(self.lines), time.monotonic()
            if count and seen >= count:
                break
            if not count and seen and time.monotonic() - quiet_since > 2:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        return list(self.lines)

    def finish(self, timeout: float) -> list[str]:
        self._thread.join(timeout)
        return list(self.lines)


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    home = tmp_path / "home"
    home.mkdir()
    session = Shell(home, _free_port())
    try:
        yield session
    finally:
        session.stop_all()


def test_every_command_of_the_quickstart_prints_what_the_page_shows(shell: Shell) -> None:
    page = parse_page(PAGE.read_text(encoding="utf-8"))
    commands = [step for step in page.steps if isinstance(step, Command)]
    assert len(commands) >= 10, "the page lost its commands"
    record: list[str] = []
    for step in page.steps:
        if isinstance(step, tuple):
            name, content = step
            cwd = Path((shell.state / "cwd").read_text().strip())
            (cwd / name).write_text(content, encoding="utf-8")
            continue
        if step.background:
            actual = _run_background(shell, step)
        else:
            code, actual = shell.run(step.text)
            assert code == 0, f"$ {step.text}\nexited {code}:\n" + "\n".join(actual)
        record += [f"$ {step.text}", *actual]
        if os.environ.get("QUICKSTART_OUTPUT"):
            Path(os.environ["QUICKSTART_OUTPUT"]).write_text("\n".join(record) + "\n", encoding="utf-8")
        else:
            assert normalise(actual) == normalise(step.output), f"$ {step.text}"


def _run_background(shell: Shell, step: Command) -> list[str]:
    process = shell.start(step.text)
    reader = Reader(shell, process)
    stop_at = next((n for n, line in enumerate(step.output) if line.startswith("^C")), None)
    if stop_at is None:
        return reader.wait_for(len(step.output), timeout=60)
    before = reader.wait_for(stop_at, timeout=120)
    process.send_signal(signal.SIGINT)
    process.wait(60)
    after = reader.finish(10)[len(before) :]
    if after:
        after[0] = "^C" + after[0]
    return before + after


def test_the_page_parser_reads_commands_outputs_markers_and_files() -> None:
    page = parse_page(
        "<!-- quickstart: background -->\n```console\n$ serve\nready\n^Cbye\n```\n"
        "```sh\nsudo thing\n```\n"
        "<!-- quickstart: file a.py -->\n```python\nprint(1)\n```\n"
        "```console\n$ one \\\n  --flag\nout 1\n$ two\n```\n"
    )
    assert page.steps == [
        Command("serve", ["ready", "^Cbye"], background=True),
        ("a.py", "print(1)\n"),
        Command("one \\\n  --flag", ["out 1"]),
        Command("two", []),
    ]
