"""Telemetry during a generation: a background sampler (20 Hz) of host memory and CPU with
psutil, and of GPU memory, utilisation and power with NVML where a GPU is present.

Per generation it gives peaks and means (the columns of docs/schema.md): `peak_rss_mb` (the
process holding the model and its children: llama.cpp's engine process, the server's for a served
model on this machine, found by the port it listens on; None for a server elsewhere), `peak_ram_used_mb`
(the whole machine), `mean_cpu_pct` (the machine, all cores = 100), `peak_vram_mb`,
`mean_gpu_util_pct`, `mean_gpu_power_w` (all GPUs NVML sees; None without one), and
`telemetry_samples`. bench/telemetry.py measures its cost against decode speed.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil

INTERVAL_S = 0.05
CHILD_REFRESH = 20  # samples between two listings of the process's children


class _Nvml:
    """NVML opened once per sampler; nothing (and no error) without a driver or a GPU."""

    def __init__(self):
        self.handles = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:
            self.nv = None

    def read(self) -> tuple[float, float, float | None] | None:
        """(memory used MB, utilisation %, power W) over all GPUs, or None."""
        if not self.handles:
            return None
        used = util = 0.0
        power: float | None = 0.0
        for h in self.handles:
            try:
                used += self.nv.nvmlDeviceGetMemoryInfo(h).used / 2**20
                util += self.nv.nvmlDeviceGetUtilizationRates(h).gpu
            except Exception:
                return None
            try:
                power += self.nv.nvmlDeviceGetPowerUsage(h) / 1000.0
            except Exception:
                power = None
        return used, util / len(self.handles), power

    def close(self) -> None:
        if self.nv is not None:
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass


@dataclass
class Telemetry:
    rss_mb: list[float] = field(default_factory=list)
    ram_used_mb: list[float] = field(default_factory=list)
    cpu_pct: list[float] = field(default_factory=list)
    vram_mb: list[float] = field(default_factory=list)
    gpu_util_pct: list[float] = field(default_factory=list)
    gpu_power_w: list[float] = field(default_factory=list)
    samples: int = 0

    def row(self) -> dict:
        def peak(xs):
            return max(xs) if xs else None

        def mean(xs):
            return sum(xs) / len(xs) if xs else None

        return {"peak_rss_mb": peak(self.rss_mb), "peak_ram_used_mb": peak(self.ram_used_mb),
                "mean_cpu_pct": mean(self.cpu_pct), "peak_vram_mb": peak(self.vram_mb),
                "mean_gpu_util_pct": mean(self.gpu_util_pct), "mean_gpu_power_w": mean(self.gpu_power_w),
                "telemetry_samples": self.samples}


LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def model_pid(backend) -> int | None:
    """The process holding a backend's model: the engine process the backend started (llama.cpp),
    this one for a model in process; for a served model the process listening on its server's port
    when that is this machine; else None."""
    pid = backend.process_pid()
    if pid is not None:
        return pid
    url = backend.server_url()
    if url is None:
        return os.getpid()
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return listening_pid(port)


def listening_pid(port: int) -> int | None:
    """The process listening on a TCP port of this machine (None where it cannot be seen)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return c.pid
    return None


class Sampler:
    """`with Sampler(pid) as s: ...generate...`, then `s.data.row()`. One sample at the start and
    one at the end, so even a generation shorter than the interval has figures. `pid`: the
    process holding the model (`model_pid`); None samples no process memory."""

    def __init__(self, pid: int | None, interval_s: float = INTERVAL_S):
        self.proc = psutil.Process(pid) if pid is not None else None
        self.interval_s = interval_s
        self.data = Telemetry()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="telemetry")
        self._nvml = _Nvml()
        self._children: list | None = None

    def _rss_mb(self) -> float | None:
        if self.proc is None:
            return None
        # Listing children scans every process (~1 ms): done once a second, not per sample.
        if self._children is None or self.data.samples % CHILD_REFRESH == 0:
            self._children = self.proc.children(recursive=True)
        total = self.proc.memory_info().rss
        for child in self._children:
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total / 2**20

    def sample(self, cpu: bool = True) -> None:
        d = self.data
        try:
            rss = self._rss_mb()
        except psutil.Error:  # the process is gone (a server that stopped): the rest still counts
            rss, self.proc = None, None
        d.samples += 1
        if rss is not None:
            d.rss_mb.append(rss)
        d.ram_used_mb.append(psutil.virtual_memory().used / 2**20)
        if cpu:  # CPU use is a rate: only over an interval since the previous reading
            d.cpu_pct.append(psutil.cpu_percent(None))
        gpu = self._nvml.read()
        if gpu:
            d.vram_mb.append(gpu[0])
            d.gpu_util_pct.append(gpu[1])
            if gpu[2] is not None:
                d.gpu_power_w.append(gpu[2])

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> Sampler:
        psutil.cpu_percent(None)  # sets the reference point of the first rate
        self.sample(cpu=False)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.sample()
        self._nvml.close()
