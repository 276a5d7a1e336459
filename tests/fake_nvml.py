"""A stand-in for the `pynvml` module (nvidia-ml-py) with one GPU, for the NVML paths on a
machine without a GPU. The functions and return shapes are NVML's, as nvidia-ml-py exposes them."""
from types import SimpleNamespace

STATE = {"used_mb": 4096.0, "util": 60, "power_mw": 250_000, "pids": {}}


def nvmlInit():
    pass


def nvmlShutdown():
    pass


def nvmlDeviceGetCount():
    return 1


def nvmlDeviceGetHandleByIndex(i):
    return SimpleNamespace(index=i)


def nvmlDeviceGetName(handle):
    return "NVIDIA H100 80GB HBM3"


def nvmlDeviceGetMemoryInfo(handle):
    return SimpleNamespace(total=80 * 2**30, used=int(STATE["used_mb"] * 2**20), free=0)


def nvmlDeviceGetUtilizationRates(handle):
    return SimpleNamespace(gpu=STATE["util"], memory=30)


def nvmlDeviceGetPowerUsage(handle):
    return STATE["power_mw"]


def nvmlDeviceGetComputeRunningProcesses(handle):
    return [SimpleNamespace(pid=pid, usedGpuMemory=int(mb * 2**20)) for pid, mb in STATE["pids"].items()]


def nvmlSystemGetDriverVersion():
    return "550.54.15"


def nvmlSystemGetCudaDriverVersion():
    return 12040
