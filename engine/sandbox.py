"""Runs untrusted, model-written Python in a sandbox.

bubblewrap (`bwrap`) gives a root that holds only the system's interpreter and libraries
(/usr, read-only), a private /tmp, no network and new namespaces for everything: the
checkout, the results file, secrets and homes are not there; the child runs as an unprivileged user with limits on CPU
time, memory, file size and process count, an empty environment, a wall-clock time
limit and capped output. Without bwrap the sandbox refuses to run, unless the user
turns isolation off knowingly (MODELPICK_UNSANDBOXED=1), and then still applies the
limits, an empty environment and (where `unshare` allows) no network.
"""
from __future__ import annotations

import os
import queue
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

UNSANDBOXED_ENV = "MODELPICK_UNSANDBOXED"
_NOBODY = 65534


class SandboxUnavailable(RuntimeError):
    """No isolation is available and the user has not turned it off knowingly."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    file_size_mb: int = 16
    processes: int = 32
    output_bytes: int = 64 * 1024
    # Everything the program may write, in all files together: its folder and /tmp are each a
    # tmpfs of this size (host memory, so they are capped apart from memory_mb).
    scratch_mb: int = 64


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    output_truncated: bool = False
    duration_s: float = 0.0
    isolation: str = "bwrap"

    @property
    def killed_by(self) -> str | None:
        if self.timed_out:
            return "time limit"
        if self.output_truncated:
            return "output limit"
        if self.returncode is not None and self.returncode < 0:
            return signal.Signals(-self.returncode).name
        return None


def _python() -> str:
    # A system interpreter the unprivileged user can read (a venv under /root may not be).
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("python3") or "python3"


def isolation() -> str:
    """'bwrap', 'unsandboxed' (turned off knowingly) or raise SandboxUnavailable."""
    if shutil.which("bwrap") and _bwrap_works():
        return "bwrap"
    if os.environ.get(UNSANDBOXED_ENV) == "1":
        return "unsandboxed"
    raise SandboxUnavailable(
        "no sandbox for model-written code: install bubblewrap (apt-get install bubblewrap); "
        f"to run such code without isolation anyway, set {UNSANDBOXED_ENV}=1")


_BWRAP_OK: bool | None = None


def _bwrap_works() -> bool:
    global _BWRAP_OK
    if _BWRAP_OK is None:
        try:
            r = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                               capture_output=True, timeout=10)
            _BWRAP_OK = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _BWRAP_OK = False
    return _BWRAP_OK


def _limit_child(limits: Limits, drop_privileges: bool):
    def apply() -> None:
        mb = 2**20
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * mb, limits.file_size_mb * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop_privileges and os.getuid() == 0:
            os.setgroups([])
            os.setgid(_NOBODY)
            os.setuid(_NOBODY)
        if os.getuid() != 0:  # root ignores RLIMIT_NPROC; an unprivileged user does not
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    return apply


# What the interpreter needs to start and import its standard library; nothing else of the host's
# file system is there (no checkout, results file, secrets, scenario folders or anyone's home).
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf")


def _system_binds() -> list[str]:
    """bwrap arguments: /usr read-only, the merged-/usr links as links (real folders bound where a
    system has no merged /usr), a few files of /etc, and an empty root around them."""
    out: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            out += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            out += ["--ro-bind", path, path]
    for path in _SYSTEM_FILES:
        if os.path.isfile(path):
            out += ["--ro-bind", path, path]
    return out


def _command(work: Path, names: list[str], limits: Limits, mode: str,
             packages: tuple[str, ...] = ()) -> tuple[list[str], str | None, dict]:
    """(command, working folder, environment) that runs main.py of `work` in the sandbox; `packages`: files
    and folders of installed Python packages bound read-only into /tmp/packages (on the program's path)."""
    if os.getuid() == 0:
        os.chmod(work, 0o777)  # the unprivileged user may write its scratch files here
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/work", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    py = [_python(), "-I", "-X", "utf8", "main.py"]
    if mode == "bwrap":
        size = str(limits.scratch_mb * 2**20)
        # a sized tmpfs for /tmp and for the working folder, the given files bound into it read-only
        given = sum((["--ro-bind", str(work / name), f"/tmp/work/{name}"] for name in names), [])
        given += sum((["--ro-bind", p, f"/tmp/packages/{Path(p).name}"] for p in packages), [])
        cmd = ["bwrap", *_system_binds(), "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs",
               "/tmp/work", *given, "--chdir", "/tmp/work", "--dev", "/dev", "--proc", "/proc",
               "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
               *sum((["--setenv", k, v] for k, v in env.items()), []), *py]
        return cmd, None, env
    net = ["unshare", "-n"] if shutil.which("unshare") and os.getuid() == 0 else []
    if packages:  # unsandboxed (turned off knowingly): the packages where they are
        (work / "packages.pth").write_text("\n".join(sorted({str(Path(p).parent) for p in packages})))
    return [*net, *py], str(work), env


def _write_files(work: Path, code: str, files: dict[str, str] | None) -> list[str]:
    names = []
    for name, text in {**(files or {}), "main.py": code}.items():
        (work / name).write_text(text, encoding="utf-8")
        names.append(name)
    return names


def run_python(code: str, files: dict[str, str] | None = None, limits: Limits = Limits()) -> SandboxResult:
    """Run `code` as main.py in a fresh temporary folder with `files` beside it."""
    mode = isolation()
    with tempfile.TemporaryDirectory(prefix="modelpick-sbx-") as tmp:
        work = Path(tmp)
        cmd, cwd, env = _command(work, _write_files(work, code, files), limits, mode)
        for attempt in range(_FORK_RETRIES):
            res = _execute(cmd, cwd, env, limits, mode)
            if not _could_not_start(res):
                break
            # The unprivileged user's process limit counts processes of earlier sandboxes
            # (a killed fork bomb) until the kernel has released them: wait a moment.
            time.sleep(0.25 * (attempt + 1))
        return res


class Session:
    """A sandboxed Python program that stays up and answers one JSON line for each line it is sent
    (an environment's tools during a case): the same isolation and limits as run_python, but one start
    for many calls. A call that does not answer within `wall_s` ends the program (`ask` says so), and the
    next call starts it again."""

    def __init__(self, code: str, files: dict[str, str] | None = None, limits: Limits = Limits(),
                 packages: tuple[str, ...] = ()):
        self.code, self.files, self.limits, self.packages = code, files or {}, limits, packages
        self.mode = isolation()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._proc: subprocess.Popen | None = None
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        self.stderr = bytearray()

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="modelpick-sbx-")
        work = Path(self._tmp.name)
        cmd, cwd, env = _command(work, _write_files(work, self.code, self.files), self.limits, self.mode,
                                 self.packages)
        self._proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, start_new_session=True,
                                      preexec_fn=_limit_child(self.limits, drop_privileges=True))
        self._lines = queue.SimpleQueue()
        self.stderr = bytearray()
        threading.Thread(target=self._pump, args=(self._proc, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_err, args=(self._proc,), daemon=True).start()

    def _pump(self, proc, lines) -> None:
        limit = self.limits.output_bytes
        stream = proc.stdout
        while True:
            line = stream.readline(limit + 1)
            if not line:
                break
            if len(line) > limit and not line.endswith(b"\n"):
                _kill(proc)
                lines.put(("overflow", None))
                break
            lines.put(("line", line))
        lines.put(("eof", None))

    def _pump_err(self, proc) -> None:
        while chunk := proc.stderr.read(4096):
            room = self.limits.output_bytes - len(self.stderr)
            if room > 0:
                self.stderr += chunk[:room]

    def ask(self, line: str, wall_s: float | None = None) -> tuple[str | None, str | None]:
        """(the program's answer line, None), or (None, why there is none: a time limit, the program ended,
        its output too long)."""
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            self.start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(line.encode("utf-8") + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the program ended: its end is read below
        try:
            kind, data = self._lines.get(timeout=wall_s or self.limits.wall_s)
        except queue.Empty:
            self.close()
            return None, f"no answer within {wall_s or self.limits.wall_s:g} s (time limit)"
        if kind == "line":
            return data.decode("utf-8", "replace"), None
        if kind == "overflow":
            self.close()
            return None, f"its answer is over {self.limits.output_bytes:,} bytes (output limit)"
        proc.wait(timeout=5)
        rc = proc.returncode
        err = self.stderr.decode("utf-8", "replace").strip().splitlines()
        self.close()
        how = signal.Signals(-rc).name if rc is not None and rc < 0 else f"exit status {rc}"
        return None, f"the environment ended ({how})" + (f": {err[-1][:200]}" if err else "")

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                _kill(self._proc)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                try:
                    if stream:
                        stream.close()
                except OSError:
                    pass
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


_FORK_RETRIES = 5


def _could_not_start(res: SandboxResult) -> bool:
    """bwrap (or the interpreter) could not even fork: EAGAIN from the process limit."""
    return (res.returncode not in (0, None) and not res.stdout and not res.timed_out
            and "Resource temporarily unavailable" in res.stderr
            and ("Can't fork" in res.stderr or "fork" in res.stderr.lower()))


def _execute(cmd, cwd, env, limits: Limits, mode: str) -> SandboxResult:
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_limit_child(limits, drop_privileges=True))
    out, err = bytearray(), bytearray()
    truncated = threading.Event()

    def pump(stream, buf):
        while chunk := stream.read(8192):
            room = limits.output_bytes - len(buf)
            if room > 0:
                buf += chunk[:room]
            if len(chunk) > room:
                truncated.set()
                _kill(proc)
                # keep draining so the child is not blocked on a full pipe while it dies
        stream.close()

    readers = [threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err), daemon=True)]
    for r in readers:
        r.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.wall_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        proc.wait()
    for r in readers:
        r.join(timeout=5)
    return SandboxResult(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                         timed_out=timed_out, output_truncated=truncated.is_set(),
                         duration_s=time.monotonic() - t0, isolation=mode)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole session: children and grandchildren
    except (ProcessLookupError, PermissionError):
        pass
