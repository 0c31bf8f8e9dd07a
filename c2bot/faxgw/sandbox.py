"""Run fax rendering in warm child processes, each job with a time limit and a memory limit.

Documents come from strangers: a PDF that loops forever or an image that unpacks to gigabytes must
cost one refused fax, never the bot. So the work happens in `python -m c2bot.faxgw.sandbox`
workers, which cap their own address space (RLIMIT_AS) and CPU time before each job; the parent
kills a worker's whole process group at the job's wall-clock deadline.

Starting Python and importing pypdf, pypdfium2 and Pillow costs about 0.4 s, more than rendering
ten pages, so a small pool of workers (`POOL_SIZE`, one per core here) is started on first use
(one worker at once, the others after its first job, so they do not slow it down) and kept:
each takes one job at a time over its pipes. A worker that timed out, ran out of memory or
crashed is killed and replaced; a healthy one is recycled after `JOBS_PER_WORKER` jobs, or sooner
if its address space grew a lot, so leaks and heap fragmentation stay bounded.

Parent and worker speak JSON lines. The worker says `{"ready": pid}` once its imports are done;
then for each job it gets `{"task", "payload", "seconds", "memory_mb"}` on stdin and writes
`{"progress": filename}` before each document (so a hang can be blamed on the right file) and one
`{"result": {...}}` or `{"error": {...}}` at the end. Only JSON comes back: the parent never
unpickles anything a worker that read hostile input could have written.

The pool lives in threads, not in one event loop: it serves every loop of the process (tests run
one per test) and a blocking thread per running job is cheap next to a render. `close_pool()`
stops every worker; it also runs at interpreter exit, and a worker whose parent died reads EOF
and exits by itself.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: Largest file the child may write (the output TIFF, a converted Office document).
MAX_FILE_BYTES = 512 * 1024 * 1024
#: What the child may print on stderr before we stop keeping it (tracebacks for the log).
MAX_STDERR = 64 * 1024
#: Warm workers kept; each renders one job at a time (the machine has two cores).
POOL_SIZE = 2
#: A worker is replaced after this many jobs, to bound leaks in pdfium or Pillow.
JOBS_PER_WORKER = 50
#: A worker whose address space grew by more than this over its start is replaced after the job:
#: a fragmented heap would make the next job's memory limit bite early.
GROWTH_LIMIT_KB = 128 * 1024
#: How long a new worker may take to start and import (not counted against any job's limit).
START_SECONDS = 60.0
#: Longest JSON line we accept from a worker.
MAX_LINE = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How long (wall clock) and how much address space one job may use."""

    seconds: float
    memory_mb: int


class SandboxFailed(Exception):
    """The worker did not deliver a result: it timed out, ran out of memory or crashed."""

    def __init__(self, kind: str, current: str, detail: str) -> None:
        super().__init__(f"{kind} while on {current!r}: {detail}")
        self.kind = kind  # 'timeout', 'out-of-memory' or 'crashed'
        self.current = current  # the item the worker last said it was working on
        self.detail = detail


async def run_job(task: str, payload: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Run `task` with `payload` in a warm limited worker and return its result. If the caller
    is cancelled, the worker running the job is killed (and replaced)."""
    import asyncio  # here, not at the top: the worker imports this module and never needs it

    pool = shared_pool()
    job = _Job(task, payload, limits)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool.executor, pool.run, job)
    except asyncio.CancelledError:
        pool.cancel(job)
        raise


async def close_pool() -> None:
    """Stop every worker and wait for them; the next job starts a new pool."""
    import asyncio

    with _SHARED_LOCK:
        pool = _SHARED[0]
        _SHARED[0] = None
    if pool is not None:
        await asyncio.to_thread(pool.close)


_SHARED: list[WorkerPool | None] = [None]
_SHARED_LOCK = threading.Lock()


def shared_pool() -> WorkerPool:
    """The process's pool, started on first use."""
    with _SHARED_LOCK:
        pool = _SHARED[0]
        if pool is None:
            pool = _SHARED[0] = WorkerPool()
        return pool


def _close_at_exit() -> None:
    with _SHARED_LOCK:
        pool = _SHARED[0]
        _SHARED[0] = None
    if pool is not None:
        pool.close()


def _forget_in_forked_child() -> None:
    """A forked copy of this process must never touch (or kill) its parent's workers, nor wait
    for a lock a thread of the parent held at the fork."""
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()
    if _SHARED[0] is not None:
        _INHERITED.append(_SHARED[0])  # kept, never closed here: its processes are the parent's
    _SHARED[0] = None


_INHERITED: list[WorkerPool] = []


atexit.register(_close_at_exit)
os.register_at_fork(after_in_child=_forget_in_forked_child)


@dataclass
class _Job:
    task: str
    payload: dict[str, Any]
    limits: Limits
    current: str = ""
    cancelled: bool = False
    worker: _Worker | None = None


class WorkerPool:
    """`size` warm workers and one thread per worker that feeds it jobs."""

    def __init__(self, size: int = POOL_SIZE, jobs_per_worker: int = JOBS_PER_WORKER) -> None:
        self.size = size
        self.jobs_per_worker = jobs_per_worker
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="fax-sandbox")
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False
        # One worker now; the others once a job is done, so the first job does not share the
        # CPU with several Python start-ups (measured: 1.5 s cold for 10 pages, against 0.8 s)
        self._idle.append(_Worker.spawn())

    def pids(self) -> list[int]:
        """Process ids of the current workers (idle and busy)."""
        with self._lock:
            return sorted(worker.process.pid for worker in [*self._idle, *self._busy])

    def run(self, job: _Job) -> dict[str, Any]:
        """Run one job on an idle worker (blocking; called in one of `executor`'s threads)."""
        worker = self._take(job)
        try:
            result = worker.run(job)
        except SandboxFailed:
            self._replace(worker)
            raise
        worker.jobs += 1
        if worker.jobs >= self.jobs_per_worker or worker.should_retire:
            self._replace(worker)
        else:
            self._give_back(worker)
        return result

    def cancel(self, job: _Job) -> None:
        """The caller gave up on `job`: never start it, or kill the worker running it."""
        with self._lock:
            job.cancelled = True
            if job.worker is not None:
                job.worker.kill()

    def close(self) -> None:
        """Kill every worker, wait for them and for the threads (a job in flight fails)."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.kill()
        self.executor.shutdown(wait=True)
        for worker in workers:
            worker.close()

    def _take(self, job: _Job) -> _Worker:
        with self._lock:
            if self._closed or job.cancelled:
                raise SandboxFailed("crashed", "", "the renderer is shutting down or was cancelled")
            worker = self._idle.pop() if self._idle else _Worker.spawn()
            self._busy.add(worker)
            job.worker = worker
            return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if not self._closed:
                self._idle.append(worker)
                self._top_up()
                return
        worker.kill()
        worker.close()

    def _top_up(self) -> None:
        """Start workers until there are `size` (called with the lock held)."""
        while len(self._idle) + len(self._busy) < self.size:
            self._idle.append(_Worker.spawn())

    def _replace(self, worker: _Worker) -> None:
        """Retire `worker` (kill it, reap it) and start its successor, which warms up while
        this thread returns the result."""
        worker.kill()
        worker.close()
        with self._lock:
            self._busy.discard(worker)
            if not self._closed:
                self._top_up()


class _Timeout(Exception):
    """The worker said nothing more before the deadline."""


@dataclass(eq=False)
class _Worker:
    """One worker process and the parent's end of its pipes."""

    process: subprocess.Popen[bytes]
    stderr: IO[bytes]
    jobs: int = 0
    ready: bool = False
    should_retire: bool = False
    buffer: bytes = b""
    closed: bool = field(default=False)

    @classmethod
    def spawn(cls) -> _Worker:
        stderr = tempfile.TemporaryFile(prefix="c2fax-worker-")  # noqa: SIM115 - closed in close()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "c2bot.faxgw.sandbox"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_child_environment(),
                start_new_session=True,  # its own process group: killed whole, converters too
            )
        except OSError as error:
            stderr.close()
            raise SandboxFailed("crashed", "", f"cannot start a render worker: {error}") from None
        return cls(process, stderr)

    def run(self, job: _Job) -> dict[str, Any]:
        """Send one job and read its answer by the job's wall-clock deadline."""
        if not self.ready:
            self._wait_ready(job)
        message = {
            "task": job.task,
            "payload": job.payload,
            "seconds": job.limits.seconds,
            "memory_mb": job.limits.memory_mb,
        }
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            raise self._death(job) from None
        deadline = time.monotonic() + job.limits.seconds
        while True:
            try:
                reply = self._read(deadline)
            except _Timeout:
                self.kill()
                raise SandboxFailed(
                    "timeout", job.current, f"no result in {job.limits.seconds:g} s"
                ) from None
            if reply is None:
                raise self._death(job)
            if "progress" in reply:
                job.current = str(reply["progress"])
            elif "result" in reply:
                self.should_retire = bool(reply.get("retire"))
                return dict(reply["result"])
            elif "error" in reply:
                error = reply["error"]
                raise SandboxFailed(str(error["kind"]), job.current, str(error["detail"]))

    def _wait_ready(self, job: _Job) -> None:
        try:
            reply = self._read(time.monotonic() + START_SECONDS)
        except _Timeout:
            raise SandboxFailed("crashed", "", f"no worker ready in {START_SECONDS:g} s") from None
        if reply is None or "ready" not in reply:
            raise self._death(job)
        self.ready = True

    def _read(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line, None at EOF; _Timeout at the deadline."""
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([descriptor], [], [], remaining)[0]:
                raise _Timeout
            chunk = os.read(descriptor, 65536)
            if not chunk:
                return None
            self.buffer += chunk
            if len(self.buffer) > MAX_LINE:
                raise SandboxFailed("crashed", "", "the worker wrote an over-long line")
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return dict(json.loads(line))
        except (ValueError, TypeError):
            raise SandboxFailed(
                "crashed", "", "the worker wrote something that is not JSON"
            ) from None

    def _death(self, job: _Job) -> SandboxFailed:
        """What a worker that stopped talking died of."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        returncode = self.process.poll()
        detail = " | ".join(self._stderr_tail().splitlines()[-3:]) or f"exit status {returncode}"
        memory_signals = (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS)
        if job.cancelled:
            return SandboxFailed("crashed", job.current, "cancelled")
        if returncode in memory_signals or "MemoryError" in detail or "bad_alloc" in detail:
            return SandboxFailed("out-of-memory", job.current, detail)
        if returncode == -signal.SIGXCPU:
            return SandboxFailed("timeout", job.current, "CPU time limit")
        return SandboxFailed("crashed", job.current, detail)

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            size = self.stderr.seek(0, os.SEEK_END)
            self.stderr.seek(max(0, size - MAX_STDERR))
            return self.stderr.read().decode(errors="replace").strip()
        return ""

    def kill(self) -> None:
        """SIGKILL the worker's process group (the worker and any converter it started)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Reap the (killed) worker and close our ends of its pipes and its stderr file."""
        if self.closed:
            return
        self.closed = True
        self.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _child_environment() -> dict[str, str]:
    """The parent's environment, with our package importable even when run from a source tree."""
    environment = dict(os.environ)
    # one malloc arena: each extra one reserves 64 MB of address space, which RLIMIT_AS counts
    environment["MALLOC_ARENA_MAX"] = "1"
    root = str(Path(__file__).resolve().parents[2])
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (root, environment.get("PYTHONPATH", "")) if part
    )
    return environment


# --- the child side ---------------------------------------------------------------------------


def limit_self(seconds: float, memory_mb: int) -> None:
    """Cap this process: address space, CPU seconds, file size, no core dumps.

    Only soft limits are lowered, so a converter we start (LibreOffice) can be given its own.
    """
    _lower(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    _lower(resource.RLIMIT_CPU, math.ceil(seconds) + 2)
    _lower(resource.RLIMIT_FSIZE, MAX_FILE_BYTES)
    _lower(resource.RLIMIT_CORE, 0)


def _lower(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    if soft == resource.RLIM_INFINITY or value < soft:
        resource.setrlimit(which, (value, hard))


def _set_soft(which: int, value: int) -> None:
    """Set a soft limit up or down (never above the hard one): each job brings its own."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, hard))


def _limit_job(seconds: float, memory_mb: int) -> None:
    """This job's limits: `memory_mb` of address space, and `seconds` (+2) more CPU time than
    the worker has used so far (the parent's wall-clock kill usually comes first)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _set_soft(resource.RLIMIT_CPU, used + math.ceil(seconds) + 2)
    _set_soft(resource.RLIMIT_AS, memory_mb * 1024 * 1024)


def report_progress(current: str) -> None:
    """Tell the parent which item we start on (it names it if we then hang or die)."""
    _emit({"progress": current})


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _status_kb(field_name: str) -> int:
    """A `Vm...` figure of this process, in kB, from /proc (0 where there is no /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Reset VmHWM, so the peak we report is this job's and not an earlier one's."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _give_memory_back() -> None:
    """Free what the job left and hand the heap's free pages back to the system."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _run_one(job: dict[str, Any], tasks: dict[str, Any], start_vm_kb: int) -> None:
    """Run one job under its limits and report; a MemoryError or a bug ends the worker (the
    parent replaces it), since its heap can no longer be trusted."""
    _limit_job(float(job["seconds"]), int(job["memory_mb"]))
    _reset_peak()
    try:
        result = tasks[job["task"]](job["payload"])
    except MemoryError:
        _set_soft(resource.RLIMIT_AS, resource.RLIM_INFINITY)
        _emit({"error": {"kind": "out-of-memory", "detail": "MemoryError"}})
        os._exit(3)
    except Exception as error:
        _set_soft(resource.RLIMIT_AS, resource.RLIM_INFINITY)
        detail = "".join(traceback.format_exception_only(error)).strip()
        traceback.print_exc()
        _emit({"error": {"kind": "crashed", "detail": detail}})
        os._exit(4)
    _set_soft(resource.RLIMIT_AS, resource.RLIM_INFINITY)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["peak_rss_kb"] = max(_status_kb("VmHWM"), children)
    grown = _status_kb("VmSize") - start_vm_kb > GROWTH_LIMIT_KB
    _emit({"result": result, "retire": grown})
    _give_memory_back()  # after the answer: the parent need not wait for it


def main() -> None:
    """Worker entry point: import everything once, then run jobs until stdin closes."""
    _lower(resource.RLIMIT_FSIZE, MAX_FILE_BYTES)
    _lower(resource.RLIMIT_CORE, 0)
    from c2bot.faxgw import render

    render.warm_up()
    tasks = {"render": render.run_render_job, "received-to-pdf": render.run_received_job}
    start_vm_kb = _status_kb("VmSize")
    _emit({"ready": os.getpid()})
    for line in sys.stdin:
        _run_one(json.loads(line), tasks, start_vm_kb)


if __name__ == "__main__":
    main()
