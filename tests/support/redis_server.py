"""A redis-server of a test's own (on a fixed port, so it can be stopped and started again)."""

import shutil
import subprocess

from tests.support.polling import poll
from tests.support.servers import free_port


class PrivateRedis:
    """A redis-server of this test's own; `password` turns on `requirepass`."""

    def __init__(self, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port)]
        command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        ping = ["redis-cli", "-p", str(self.port), "--no-auth-warning", "ping"]
        if self.password:
            ping[1:1] = ["-a", self.password]

        def answer() -> bytes:
            return subprocess.run(ping, capture_output=True, check=False).stdout.strip()

        poll(answer, lambda text: text == b"PONG", 10, "the private redis-server to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
