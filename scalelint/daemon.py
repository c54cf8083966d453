"""A resident scalelint for one project: `scalelint daemon start|stop|status`.

A `scalelint check` pays, besides its own work, for starting Python, importing
scalelint and reading every file's facts back from the cache. A daemon pays that once:
it keeps the facts in memory and runs each check sent to it, so after an edit only the
edited files are parsed and the project is analysed again.

The client side (`forward`) runs before anything heavy is imported: it finds the
project root from the current folder, and when a daemon serves that root it sends the
command line, folder and environment, and prints what comes back. Whenever the daemon
cannot answer (none runs, it is busy past a timeout, scalelint was upgraded under it,
the platform has no Unix sockets) the check runs in the calling process instead, so the
result never depends on whether a daemon runs. `--no-cache` always runs in-process.

A daemon listens on a Unix socket in a folder only its user can open, named by the
hash of the project root; it stops after `--idle-timeout` without requests, on
`scalelint daemon stop`, or when scalelint's code changes under it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import struct
import sys

ROOT_MARKERS = ("scalelint.toml", ".scalelint.toml", "pyproject.toml", ".git")
IDLE_TIMEOUT = 3 * 3600.0
CONNECT_TIMEOUT = 0.5
ACCEPT_TIMEOUT = 10.0  # a daemon that does not take a check by then is busy or stuck
FULL_COLLECTION_EVERY = 50  # runs
_HEADER = struct.Struct(">I")


def find_root(start: str) -> str:
    """The nearest folder at or above `start` holding a config file or `.git`."""
    folder = os.path.realpath(start)
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    candidate = folder
    while True:
        if any(os.path.exists(os.path.join(candidate, marker)) for marker in ROOT_MARKERS):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return folder
        candidate = parent


def socket_path(root: str) -> str:
    """Where the daemon of `root` listens: short enough for any root (Unix sockets
    allow ~100 bytes), in a folder private to the user."""
    # As tempfile.gettempdir() finds it, without importing tempfile (the client stays light).
    env = os.environ
    base = env.get("XDG_RUNTIME_DIR") or env.get("TMPDIR") or env.get("TEMP") or env.get("TMP") or "/tmp"
    user = os.getuid() if hasattr(os, "getuid") else 0
    name = hashlib.blake2b(root.encode(), digest_size=8).hexdigest()
    return os.path.join(base, f"scalelint-{user}", f"{name}.sock")


def available() -> bool:
    return hasattr(socket, "AF_UNIX")


def private(folder: str) -> bool:
    """The socket folder is a real folder of this user that only this user can enter: a
    check sends its environment, so it never goes to a socket someone else could have put
    there."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    owner = os.getuid() if hasattr(os, "getuid") else info.st_uid
    return stat.S_ISDIR(info.st_mode) and info.st_uid == owner and not info.st_mode & 0o077


def private_folder(root: str) -> str | None:
    """The folder of `root`'s socket, made if needed; None when it is not private."""
    folder = os.path.dirname(socket_path(root))
    with contextlib.suppress(OSError):
        os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder if private(folder) else None


# ---- the wire: a length, then a JSON object -----------------------------------------


def _send(sock: socket.socket, message: dict[str, object]) -> None:
    data = json.dumps(message).encode()
    sock.sendall(_HEADER.pack(len(data)) + data)


def _receive(sock: socket.socket) -> dict[str, object]:
    header = _exactly(sock, _HEADER.size)
    (length,) = _HEADER.unpack(header)
    message = json.loads(_exactly(sock, length))
    if not isinstance(message, dict):
        raise OSError("malformed message")
    return message


def _exactly(sock: socket.socket, count: int) -> bytes:
    chunks = []
    while count:
        chunk = sock.recv(min(count, 1 << 20))
        if not chunk:
            raise OSError("connection closed")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def request(
    root: str, message: dict[str, object], timeout: float | None, accept_timeout: float | None = None
) -> dict[str, object] | None:
    """The daemon's answer, or None when no daemon of `root` answers.

    With `accept_timeout`, the daemon first says whether it takes the request, within
    that time (a daemon busy with another check, or stopped, does not): the answer may
    then take as long as the check does.
    """
    if not available():
        return None
    path = socket_path(root)
    if not os.path.exists(path) or not private(os.path.dirname(path)):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(path)
            sock.settimeout(accept_timeout if accept_timeout is not None else timeout)
            _send(sock, message)
            if accept_timeout is not None:
                if _receive(sock).get("accepted") is not True:
                    return None
                sock.settimeout(timeout)
            return _receive(sock)
    except (OSError, ValueError):
        return None


# ---- the client -----------------------------------------------------------------------


def forward(argv: list[str]) -> int | None:
    """Run `scalelint <argv>` in the daemon of the current project; its exit code, or
    None when it has to run here."""
    if "--no-cache" in argv or os.environ.get("SCALELINT_NO_DAEMON"):
        return None
    if sys.stdout is None or sys.stderr is None:  # started with a standard stream closed
        return None
    umask = os.umask(0o22)
    os.umask(umask)
    message: dict[str, object] = {
        "command": "run",
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "stdout_tty": sys.stdout.isatty(),
        "scalelint": _installation(),
    }
    answer = request(find_root(os.getcwd()), message, timeout=None, accept_timeout=ACCEPT_TIMEOUT)
    if answer is None or "code" not in answer:
        return None
    from scalelint.output import write_stdout

    code = answer["code"]
    problem = write_stdout(str(answer.get("stdout", "")))
    if problem is not None:
        sys.stderr.write(f"scalelint: error: cannot write the report: {problem}\n")
        return 2
    sys.stderr.write(str(answer.get("stderr", "")))
    return code if isinstance(code, int) else 2


def _installation() -> str:
    """Which scalelint this is: a daemon answers only clients of its own installation."""
    from scalelint import __file__ as package
    from scalelint import __version__

    return f"{__version__} {os.path.dirname(os.path.realpath(package))} {sys.version_info[:2]}"


# ---- the daemon -----------------------------------------------------------------------


class _Stopped(BaseException):
    """SIGTERM: out of any request (a check catches SystemExit and Exception)."""


class _Terminal:
    """An output stream for one request: what the CLI writes is sent back to the client,
    and it tells the CLI whether the client's stream is a terminal (for colours)."""

    def __init__(self, tty: bool) -> None:
        import io

        self.buffer = io.StringIO()
        self.tty = tty

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty

    @property
    def encoding(self) -> str:
        return "utf-8"


def serve(root: str, idle_timeout: float = IDLE_TIMEOUT) -> int:
    """Listen for checks of the project at `root` until stopped or idle; an exit code."""
    import signal
    from pathlib import Path

    from scalelint import engine

    path = socket_path(root)
    if private_folder(root) is None:
        print(f"scalelint: {os.path.dirname(path)} is not private to this user; no daemon", file=sys.stderr)
        return 1
    if request(root, {"command": "status"}, timeout=2.0) is not None:
        print(f"scalelint: a daemon already serves {root}", file=sys.stderr)
        return 1
    if os.path.exists(path):
        os.unlink(path)  # left by a daemon that was killed
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(16)

    def stop(*_: object) -> None:
        raise _Stopped

    signal.signal(signal.SIGTERM, stop)
    code_at_start = _code_version()
    engine.keep_facts_in_memory(Path(root))
    runs = 0
    installation = _installation()
    try:
        # The first run reads every file, so the first check sent is already warm.
        _run_cli(["check", root, "--format", "json", "--exit-zero"], root, dict(os.environ), False)
        _settle(0)
        server.settimeout(idle_timeout)
        while True:
            try:
                connection, _ = server.accept()
            except TimeoutError:
                return 0
            with connection:
                try:
                    message = _receive(connection)
                except (OSError, ValueError):
                    continue
                command = message.get("command")
                if command == "status":
                    _send(connection, {"pid": os.getpid(), "root": root, "runs": runs})
                    continue
                if command == "stop":
                    _send(connection, {"stopped": os.getpid()})
                    return 0
                if _code_version() != code_at_start:
                    _send(connection, {"declined": "scalelint changed since the daemon started"})
                    return 0
                argv, cwd, env, umask = (message.get(k) for k in ("argv", "cwd", "env", "umask"))
                if message.get("scalelint") != installation:
                    _send(connection, {"declined": "the client is another scalelint installation"})
                    continue
                if not (
                    isinstance(argv, list)
                    and isinstance(cwd, str)
                    and isinstance(env, dict)
                    and isinstance(umask, int)
                ):
                    _send(connection, {"declined": "malformed request"})
                    continue
                try:
                    _send(connection, {"accepted": True})
                except OSError:
                    continue  # the client gave up waiting and ran the check itself
                answer = _run_cli([str(a) for a in argv], cwd, env, bool(message.get("stdout_tty")), umask)
                runs += 1
                with contextlib.suppress(OSError):  # a client that went away is told nothing
                    _send(connection, answer)
            _settle(runs)
    except _Stopped:
        return 0
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


def _code_version() -> str:
    """scalelint's code and rule pages, and the versions of the parsers it has loaded: a
    daemon whose code was upgraded under it stops rather than answer with the old code."""
    from importlib import metadata

    from scalelint import engine

    versions = []
    for package in ("libcst", "sqlglot", "sqlglotc", "click", "rich", "pathspec"):
        try:
            versions.append(metadata.version(package))
        except metadata.PackageNotFoundError:
            versions.append("-")
    return f"{engine.code_digest()} {' '.join(versions)}"


def _settle(runs: int) -> None:
    """Free what the last run left, after its answer went out so no client waits for it.

    What stays between runs (imported code, the kept facts) is frozen: a collection
    walks only what the last run made. Facts are acyclic, so facts replaced by an edit
    are freed by reference counting even while frozen; now and then a full collection
    frees cycles that were frozen with them.
    """
    import gc

    if runs % FULL_COLLECTION_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def _run_cli(
    argv: list[str], cwd: str, env: dict[str, str], stdout_tty: bool, umask: int | None = None
) -> dict[str, object]:
    """Run the command line as `scalelint <argv>` would in `cwd` with `env` (and the
    client's umask, for files it writes); what it printed and its exit code."""
    from scalelint.cli import main

    out, err = _Terminal(stdout_tty), _Terminal(False)  # no progress bar: stderr is no terminal
    saved = (sys.stdout, sys.stderr, os.getcwd(), dict(os.environ))
    saved_umask = os.umask(umask) if umask is not None else None
    code: int = 0
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.stdout, sys.stderr = out, err
        try:
            main.main(args=argv, prog_name="scalelint", standalone_mode=True)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    except Exception as error:  # the daemon must outlive any request
        return {"declined": f"{type(error).__name__}: {error}"}
    finally:
        sys.stdout, sys.stderr = saved[0], saved[1]
        os.chdir(saved[2])
        os.environ.clear()
        os.environ.update(saved[3])
        if saved_umask is not None:
            os.umask(saved_umask)
    return {"stdout": out.buffer.getvalue(), "stderr": err.buffer.getvalue(), "code": code}
