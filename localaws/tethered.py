"""``python -m localaws.tethered COMMAND...``: run COMMAND until this process's standard input
closes, then stop it (SIGTERM, SIGKILL 10 s later).

A server that does not watch its standard input itself (LocalStack) is started through this,
so that it stops with the process that started it even when that one is killed outright: the
kernel closes the pipe either way. ``localaws.sqs_server`` watches its own.
"""

import signal
import subprocess
import sys
import threading


def main(command: list[str]) -> int:
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    threading.Thread(target=_until_eof, args=(child,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())  # passed on, then waited for
    try:
        code = child.wait()
    except KeyboardInterrupt:  # the terminal's Ctrl-C: the child got it too
        code = child.wait()
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


def _until_eof(child: subprocess.Popen) -> None:
    sys.stdin.buffer.read()
    child.terminate()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
