"""The test suite's throwaway servers stop with their runner, even when it is terminated."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

COMMAND = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"


def test_a_terminated_runner_stops_its_servers_and_its_command():
    runner = subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "redis", "--", sys.executable, "-c", COMMAND],
        cwd=Path(settings.BASE_DIR),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert runner.stdout is not None
    started = runner.stdout.readline()  # "[servers] redis: REDIS_URL=redis://127.0.0.1:<port>/0"
    port = int(started.rsplit(":", 1)[1].split("/")[0])
    command = int(runner.stdout.readline())  # the command runs: its process id
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    runner.terminate()
    assert runner.wait(timeout=30) == 128 + signal.SIGTERM
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(ProcessLookupError):
        os.kill(command, 0)
