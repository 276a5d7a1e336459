"""What the machine is: CPU, RAM, GPUs (through NVML when present), library versions."""
from __future__ import annotations

import importlib.metadata
import os
import platform

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


def gpus() -> list[dict]:
    """NVIDIA GPUs as NVML reports them; empty without a driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = pynvml.nvmlDeviceGetName(h)
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                        "memory_total_mb": mem.total / 2**20, "memory_used_mb": mem.used / 2**20})
        return out
    finally:
        pynvml.nvmlShutdown()


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


def gpu_offload_supported() -> bool | None:
    try:
        from .backends.llamacpp import supports_gpu_offload

        return supports_gpu_offload()
    except Exception:
        return None


def host_info() -> dict:
    versions = {}
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
        "gpus": gpus(),
        "llama_gpu_offload": gpu_offload_supported(),
        "versions": versions,
    }
