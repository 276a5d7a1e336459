"""What the machine is: CPU, RAM, GPUs (through NVML when present), library versions.

A leaf: it owns NVML and psutil and imports no backend (loading llama.cpp's native library to
describe the host would be a side effect). What only a backend knows (llama.cpp's GPU offload,
a server's version) comes from `Backend.host_facts()`, which the runner merges in."""
from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Callable

import psutil

_LIBS = ("llama-cpp-python", "duckdb", "streamlit", "ollama", "pydantic", "altair")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia() -> dict:
    """What NVML reports, in one session: `gpus` (name and memory of each), `nvidia_driver` and
    `cuda_driver` (the CUDA version the driver supports). Empty and None without a driver."""
    out: dict = {"gpus": [], "nvidia_driver": None, "cuda_driver": None}
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return out
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = pynvml.nvmlDeviceGetName(h)
            out["gpus"].append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                                "memory_total_mb": mem.total / 2**20, "memory_used_mb": mem.used / 2**20})
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            out["nvidia_driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
            cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())  # e.g. 12040 for 12.4
            out["cuda_driver"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except Exception:
            pass
        return out
    finally:
        pynvml.nvmlShutdown()


def gpus() -> list[dict]:
    """NVIDIA GPUs as NVML reports them; empty without a driver."""
    return nvidia()["gpus"]


def process_vram_mb(pid: int | None = None) -> float | None:
    """GPU memory held by a process (this one by default); None without NVML or a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    pid = pid or os.getpid()
    try:
        total = 0
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(h):
                if proc.pid == pid and proc.usedGpuMemory:
                    total += proc.usedGpuMemory
        return total / 2**20
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def host_info() -> dict:
    versions: dict[str, str | None] = {}
    for lib in _LIBS:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "ram_total_mb": psutil.virtual_memory().total / 2**20,
        **nvidia(),
        "versions": versions,
    }


BUSY_OTHERS_PCT = 25.0  # other processes' CPU share above which timings are not trustworthy


def load_summary(others_pct: list[float], load_1m: list[float]) -> dict:
    """A run's host load from its samples: the median and peak CPU share other processes took,
    the peak load average, and whether the host was busy (median above BUSY_OTHERS_PCT)."""
    o = sorted(others_pct)
    median = o[len(o) // 2] if o else None
    return {"samples": len(o), "others_cpu_pct_median": median, "others_cpu_pct_max": o[-1] if o else None,
            "load_avg_1m_max": max(load_1m) if load_1m else None, "cpus": psutil.cpu_count(),
            "busy": bool(median is not None and median > BUSY_OTHERS_PCT)}


class LoadMonitor:
    """Samples, once a second while a run goes on, how busy the CPU is with other processes
    (all CPU use minus this process and its children) and the load average, so a run whose
    timings were bent by a neighbour is flagged rather than trusted. `probe`, where given, takes
    the place of the measurement: () -> (others' CPU %, 1-minute load average or None)."""

    def __init__(self, interval_s: float = 1.0, probe: Callable[[], tuple[float, float | None]] | None = None):
        import threading

        self.interval_s = interval_s
        self.probe = probe
        self.others_pct: list[float] = []
        self.load_1m: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="load-monitor")

    def start(self) -> LoadMonitor:
        self._thread.start()
        return self

    def _own_cpu_s(self, me) -> float:
        total = 0.0
        for p in [me, *me.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
        return total

    def _measure(self):
        """() -> (others' CPU %, load average) per call, from psutil."""
        import time

        me = psutil.Process()
        cores = psutil.cpu_count() or 1
        psutil.cpu_percent(None)
        state = {"own": self._own_cpu_s(me), "t": time.monotonic()}

        def probe() -> tuple[float, float | None]:
            total_pct = psutil.cpu_percent(None)
            own_now, t_now = self._own_cpu_s(me), time.monotonic()
            own_pct = 100.0 * (own_now - state["own"]) / max(t_now - state["t"], 1e-6) / cores
            state["own"], state["t"] = own_now, t_now
            return max(0.0, total_pct - own_pct), (os.getloadavg()[0] if hasattr(os, "getloadavg") else None)

        return probe

    def _sample(self) -> None:
        probe = self.probe or self._measure()
        while not self._stop.wait(self.interval_s):
            others, load = probe()
            self.others_pct.append(others)
            if load is not None:
                self.load_1m.append(load)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval_s)
        return load_summary(self.others_pct, self.load_1m)
