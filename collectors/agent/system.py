"""psutil system sampler, passive network connectivity, and suspend/resume detection."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import psutil

log = logging.getLogger("collectors.agent.system")


class SystemSampler:
    """One `system_metrics` row per call: CPU and memory now, I/O as deltas since the last call."""

    def __init__(self, top_process: bool = True, exclude_apps: set[str] | frozenset[str] = frozenset()):
        self.top_process = top_process
        # the window policy's excluded apps (lower case): never named as the top process either
        self.exclude_apps = {a.lower() for a in exclude_apps}
        psutil.cpu_percent(None)                      # prime: the first call has no baseline
        self._disk = self._disk_now()
        self._net = psutil.net_io_counters()
        self._procs: dict[int, psutil.Process] = {}
        if top_process:
            self._top()

    @staticmethod
    def _disk_now():
        try:
            return psutil.disk_io_counters()
        except (OSError, RuntimeError):
            return None

    def _top(self) -> tuple[str | None, float | None]:
        """The process with the most CPU since the previous call (name, % of one core)."""
        best, best_cpu = None, -1.0
        seen = set()
        for p in psutil.process_iter():
            pid = p.pid
            seen.add(pid)
            proc = self._procs.get(pid)
            if proc is None:
                proc = self._procs[pid] = p
            try:
                cpu = proc.cpu_percent(None)
            except (psutil.Error, OSError):
                continue
            if cpu > best_cpu:
                best, best_cpu = proc, cpu
        for pid in set(self._procs) - seen:
            del self._procs[pid]
        if best is None:
            return None, None
        try:
            name = best.name()
        except (psutil.Error, OSError):
            return None, None
        if name.lower() in self.exclude_apps:
            from .privacy import EXCLUDED_APP

            name = EXCLUDED_APP
        return name, round(best_cpu, 1)

    def sample(self, ts_us: int) -> dict:
        vm = psutil.virtual_memory()
        try:
            swap = psutil.swap_memory()
            swap_pct = round(swap.percent, 1) if swap.total else None
        except (OSError, RuntimeError):
            swap_pct = None
        disk = self._disk_now()
        net = psutil.net_io_counters()
        d_read = d_write = 0
        if disk is not None and self._disk is not None:
            d_read = max(0, disk.read_bytes - self._disk.read_bytes)
            d_write = max(0, disk.write_bytes - self._disk.write_bytes)
        self._disk = disk
        n_sent = max(0, net.bytes_sent - self._net.bytes_sent)
        n_recv = max(0, net.bytes_recv - self._net.bytes_recv)
        self._net = net
        try:
            bat = psutil.sensors_battery()
        except (OSError, RuntimeError, AttributeError):
            bat = None
        top, top_cpu = self._top() if self.top_process else (None, None)
        return {
            "ts_us": ts_us,
            "cpu_percent": round(min(100.0, max(0.0, psutil.cpu_percent(None))), 1),
            "mem_percent": round(vm.percent, 1),
            "swap_percent": swap_pct,
            "disk_read_bytes": d_read, "disk_write_bytes": d_write,
            "net_sent_bytes": n_sent, "net_recv_bytes": n_recv,
            "battery_percent": round(bat.percent, 1) if bat is not None else None,
            "on_ac_power": (bool(bat.power_plugged) if bat is not None and bat.power_plugged is not None
                            else None),
            "top_process": top, "top_process_cpu": top_cpu,
        }


def network_online(route_files: list[str]) -> bool:
    """True if a default route exists through a non-loopback interface (IPv4 or IPv6).

    Passive: reads the kernel routing table, sends nothing anywhere."""
    for f in route_files:
        try:
            text = Path(f).read_text()
        except OSError:
            continue
        if f.endswith("ipv6_route"):
            # dest prefix_len src src_len next_hop metric refcnt use flags iface
            for line in text.splitlines():
                p = line.split()
                if len(p) >= 10 and set(p[0]) == {"0"} and p[1] == "00" and p[9] != "lo":
                    flags = int(p[8], 16)
                    if flags & 0x0001 and not flags & 0x0200:   # RTF_UP, not RTF_REJECT
                        return True
        else:
            # Iface Destination Gateway Flags ...
            for line in text.splitlines()[1:]:
                p = line.split()
                if len(p) >= 4 and p[1] == "00000000" and p[0] != "lo" and int(p[3], 16) & 0x1:
                    return True
    return False


class SuspendDetector:
    """CLOCK_BOOTTIME counts time asleep, CLOCK_MONOTONIC does not: when their difference
    grows, the machine was suspended in between. Returns (suspend_ts, resume_ts) in wall
    microseconds: asleep from the previous check to now."""

    def __init__(self, threshold_s: float = 2.0, clocks=None):
        self.threshold_us = int(threshold_s * 1e6)
        self._clocks = clocks or (lambda: (time.clock_gettime_ns(time.CLOCK_BOOTTIME) // 1000,
                                           time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,
                                           time.time_ns() // 1000))
        boot, mono, wall = self._clocks()
        self._gap, self._wall = boot - mono, wall

    def check(self) -> tuple[int, int] | None:
        boot, mono, wall = self._clocks()
        gap = boot - mono
        out = None
        slept = gap - self._gap
        if slept >= self.threshold_us:
            # asleep for `slept` µs somewhere between the last check and now
            out = (max(self._wall, wall - slept), wall)
        self._gap, self._wall = gap, wall
        return out
