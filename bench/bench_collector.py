"""Receipt collector throughput and ack latency, collector pinned to one core.

    .venv/bin/python bench/bench_collector.py [--seconds 6] [--concurrency 16] [--batch 100]

Starts the real collector (``deliverydags.collector.start``) pinned to the first CPU and a
separate load process (aiohttp client) pinned to the second, then measures:

- record, closed loop: ``--concurrency`` connections, each POSTs the next signed batch as
  soon as the previous one is acknowledged (maximum throughput);
- record, fixed rate: ``--rate`` receipts/s in batches, open loop, latency measured from the
  scheduled send time (so a stalled collector cannot hide its queue);
- record, batch 1: the same closed loop with one receipt per POST;
- discard, closed loop and fixed rate: the same loads against ``--discard`` (no verify, no
  write): what HTTP alone costs on this machine; ``ratio`` = record / discard;
- disk floor: append one POST's worth of lines + fdatasync at the fixed rate, no HTTP: the
  least ack latency any durable collector gets from this disk.

It also reports the collector's CPU use during each window (receipts per CPU-second shows
the collector's capacity even when the load process is the limit) and checks the recorded
file: one line per acknowledged receipt, numbered 0..N-1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import machine  # bench/ is on sys.path when a script here runs
import orjson
import psutil

from deliverydags.collector import RECEIPTS_PATH, SECRET_ENV, start
from deliverydags.formats import RECEIPTS_FILE, signing

SECRET = b"bench-secret"
WARMUP_S = 1.0
RECEIPT = (
    b'{"id":"%s-%d","stream":"%s","seq":%d,"status":"delivered",'
    b'"delivered_at":"2025-06-01T00:00:00.000000Z"}'
)


# --- load process ----------------------------------------------------------------------


class Load:
    """Signed bodies with unique ids, and the measurements of one window."""

    def __init__(self, url: str, batch: int, seconds: float, collector_pid: int) -> None:
        self.url = url + RECEIPTS_PATH
        self.batch = batch
        self.seconds = seconds
        self.collector = psutil.Process(collector_pid)
        self.latencies_ms: list[float] = []
        self.receipts = 0
        self.errors = 0
        self.acked_total = 0  # warmup and stragglers too, to check the file against
        self._next = 0

    def body(self, tag: bytes) -> tuple[bytes, dict[str, str]]:
        first, self._next = self._next, self._next + self.batch
        items = [RECEIPT % (tag, i, tag, i) for i in range(first, first + self.batch)]
        body = items[0] if self.batch == 1 else b'{"messages":[' + b",".join(items) + b"]}"
        return body, {signing.HEADER: signing.sign(SECRET, body)}

    async def send(self, session: aiohttp.ClientSession, tag: bytes, since: float) -> None:
        """POST one batch; count it if it completes inside the window, from ``since``."""
        body, headers = self.body(tag)
        async with session.post(self.url, data=body, headers=headers) as resp:
            await resp.read()
            ok = resp.status == 204
        done = time.perf_counter()
        self.acked_total += self.batch if ok else 0
        if self.t0 <= since and done <= self.t1:
            self.latencies_ms.append((done - since) * 1e3)
            if ok:
                self.receipts += self.batch
            else:
                self.errors += 1

    def open_window(self) -> None:
        self.t0 = time.perf_counter() + WARMUP_S
        self.t1 = self.t0 + self.seconds

    async def measure(self, runs: asyncio.Future) -> dict:
        """Sample CPU use at the window's edges while ``runs`` drives the load."""
        await asyncio.sleep(max(0.0, self.t0 - time.perf_counter()))
        c0, l0 = _cpu(self.collector), _self_cpu()
        await asyncio.sleep(max(0.0, self.t1 - time.perf_counter()))
        c1, l1 = _cpu(self.collector), _self_cpu()
        await runs
        lat = sorted(self.latencies_ms)
        return {
            "receipts_per_s": self.receipts / self.seconds,
            "posts": len(lat),
            "errors": self.errors,
            "p50_ms": _pct(lat, 0.50),
            "p99_ms": _pct(lat, 0.99),
            "max_ms": lat[-1] if lat else float("nan"),
            "collector_cpu": (c1 - c0) / self.seconds,
            "load_cpu": (l1 - l0) / self.seconds,
            "acked_total": self.acked_total,
        }


async def closed_loop(load: Load, concurrency: int) -> dict:
    async def client(session: aiohttp.ClientSession, tag: bytes) -> None:
        while time.perf_counter() < load.t1:
            await load.send(session, tag, time.perf_counter())

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        load.open_window()
        runs = asyncio.gather(*(client(session, b"c%d" % c) for c in range(concurrency)))
        return await load.measure(runs)


async def open_loop(load: Load, rate: float, concurrency: int) -> dict:
    posts_per_s = rate / load.batch

    async def scheduler(session: aiohttp.ClientSession) -> None:
        tasks = set()
        start_t, k = time.perf_counter(), 0
        while (due := start_t + k / posts_per_s) < load.t1:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            task = asyncio.create_task(load.send(session, b"o", due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        await asyncio.gather(*tasks)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        load.open_window()
        return await load.measure(asyncio.ensure_future(scheduler(session)))


def worker(spec: dict) -> None:
    """Entry of the load process: run one phase, print its figures as JSON."""
    os.sched_setaffinity(0, {spec["cpu"]})
    load = Load(spec["url"], spec["batch"], spec["seconds"], spec["collector_pid"])
    if spec["rate"]:
        result = asyncio.run(open_loop(load, spec["rate"], spec["concurrency"]))
    else:
        result = asyncio.run(closed_loop(load, spec["concurrency"]))
    print(json.dumps(result))


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# --- driver ----------------------------------------------------------------------------


def pin_process(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` (threads made later inherit it from their creator)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def run_phase(
    name: str,
    args: argparse.Namespace,
    *,
    discard: bool,
    batch: int,
    rate: float = 0.0,
    seconds: float,
) -> dict:
    out = Path(tempfile.mkdtemp(prefix="phase-", dir=args.root))
    env = {**os.environ, SECRET_ENV: SECRET.decode()}
    with start(out_dir=out, env=env, discard=discard) as service:
        pin_process(service.pid, args.cpus[0])
        spec = {
            "url": service.url,
            "cpu": args.cpus[1],
            "batch": batch,
            "seconds": seconds,
            "rate": rate,
            "concurrency": args.concurrency,
            "collector_pid": service.pid,
        }
        done = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            check=True,
            text=True,
        )
    result = json.loads(done.stdout)
    result["name"] = name
    if not discard:
        result["check"] = check_file(out / RECEIPTS_FILE, result["acked_total"])
    return result


def check_file(path: Path, acked: int) -> str:
    """One line per acknowledged receipt, ``n`` running 0..N-1."""
    ns = [orjson.loads(line)["n"] for line in path.read_bytes().splitlines()]
    ok = ns == list(range(len(ns))) and len(ns) == acked
    return f"{'ok' if ok else 'MISMATCH'} ({len(ns)} lines, {acked} acked)"


def machine_and_disk(out_dir: str) -> str:
    mounts = [p for p in psutil.disk_partitions(all=True) if out_dir.startswith(p.mountpoint)]
    fs = max(mounts, key=lambda p: len(p.mountpoint)) if mounts else None
    return (
        machine.describe(f"aiohttp {aiohttp.__version__}")
        + " (other work on the machine shows up in every figure)\n"
        f"files: {out_dir} on {fs.fstype if fs else '?'} ({fs.device if fs else '?'})"
    )


def disk_floor(root: str, cpu: int, rate_posts: float, size: int, seconds: float) -> dict:
    """What the disk alone gives: append ``size`` bytes + fdatasync at ``rate_posts``/s.

    Each fixed-rate POST waits for one such fdatasync, so this is the floor of its ack latency.
    """
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    fd = os.open(Path(root) / "floor.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    data, lat = b"x" * size, []
    try:
        start_t, k = time.perf_counter(), 0
        while (due := start_t + k / rate_posts) < start_t + seconds:
            time.sleep(max(0.0, due - time.perf_counter()))
            os.write(fd, data)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - due) * 1e3)
            k += 1
    finally:
        os.close(fd)
        os.sched_setaffinity(0, before)
    lat.sort()
    return {"p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99), "max_ms": lat[-1], "n": len(lat)}


def _loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured window per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument("--batch", type=int, default=100, help="receipts per POST")
    parser.add_argument("--rate", type=float, default=20_000, help="fixed-rate phase, receipts/s")
    parser.add_argument("--dir", default=None, help="where the run directories go (a real disk)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    cpus = sorted(os.sched_getaffinity(0))
    args.cpus = (cpus[0], cpus[1]) if len(cpus) > 1 else (cpus[0], cpus[0])
    os.sched_setaffinity(0, {args.cpus[1]})  # this driver mostly sleeps; keep it off core 0
    print(machine_and_disk(args.dir or tempfile.gettempdir()))
    print(
        f"collector on cpu {args.cpus[0]}, load process on cpu {args.cpus[1]}"
        + (" (SHARED: only one cpu available)" if len(cpus) == 1 else "")
        + f"; {args.concurrency} connections, {args.seconds:g} s windows"
        + f" after {WARMUP_S:g} s warmup"
    )
    with tempfile.TemporaryDirectory(prefix="bench-collector-", dir=args.dir) as root:
        args.root = root
        phases = run_all(args)
        floor = disk_floor(
            root, args.cpus[0], args.rate / args.batch, 150 * args.batch, args.seconds
        )
    report(args, phases, floor)
    print(f"loadavg at the end: {_loadavg()}")


def run_all(args: argparse.Namespace) -> dict[str, dict]:
    s, b, rate = args.seconds, args.batch, args.rate
    return {
        "record": run_phase(f"record closed b={b}", args, discard=False, batch=b, seconds=s),
        "record_rate": run_phase(
            f"record {rate:g}/s b={b}", args, discard=False, batch=b, rate=rate, seconds=s
        ),
        "record_1": run_phase("record closed b=1", args, discard=False, batch=1, seconds=s / 2),
        "discard": run_phase(f"discard closed b={b}", args, discard=True, batch=b, seconds=s),
        "discard_rate": run_phase(
            f"discard {rate:g}/s b={b}", args, discard=True, batch=b, rate=rate, seconds=s
        ),
        "discard_1": run_phase("discard closed b=1", args, discard=True, batch=1, seconds=s / 2),
    }


def report(args: argparse.Namespace, phases: dict[str, dict], floor: dict) -> None:
    print(
        f"{'phase':<24}{'receipts/s':>12}{'posts':>8}{'err':>5}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'coll cpu':>10}{'load cpu':>10}{'rcpt/cpu-s':>12}  file"
    )
    for r in phases.values():
        per_cpu = r["receipts_per_s"] / r["collector_cpu"] if r["collector_cpu"] else 0.0
        print(
            f"{r['name']:<24}{r['receipts_per_s']:>12,.0f}{r['posts']:>8}{r['errors']:>5}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}"
            f"{r['collector_cpu']:>9.0%} {r['load_cpu']:>9.0%} {per_cpu:>11,.0f}  "
            f"{r.get('check', '-')}"
        )
    print(
        f"{'disk floor ' + format(args.rate / args.batch, 'g') + '/s':<24}{'':>12}"
        f"{floor['n']:>8}{'':>5}{floor['p50_ms']:>9.2f}{floor['p99_ms']:>9.2f}"
        f"{floor['max_ms']:>9.2f}  (append {150 * args.batch} B + fdatasync, no HTTP)"
    )
    for label, rec, dis in (
        (f"closed b={args.batch}", "record", "discard"),
        (f"{args.rate:g}/s", "record_rate", "discard_rate"),
        ("closed b=1", "record_1", "discard_1"),
    ):
        r, d = phases[rec], phases[dis]
        print(
            f"ratio record/discard, {label}: throughput "
            f"{r['receipts_per_s'] / d['receipts_per_s']:.2f}, p99 {r['p99_ms'] / d['p99_ms']:.1f}x"
        )
    thr, lat = phases["record"]["receipts_per_s"], phases["record_rate"]["p99_ms"]
    met = thr >= 20_000 and lat < 20
    print(
        f"goal (>= 20,000 receipts/s; p99 < 20 ms at {args.rate:g}/s): "
        f"{thr:,.0f}/s, p99 {lat:.1f} ms -> {'MET' if met else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
