"""lrfp.procpool: spawned workers that ignore Ctrl-C, report through a queue, and stop when asked."""

from __future__ import annotations

import os
import signal
import time

from lrfp.procpool import WORKER, SpawnPool, report, stop_requested


def _init(tag: str) -> None:
    WORKER["tag"] = tag


def _work(n: int) -> tuple[str, int, bool]:
    for i in range(n):
        report(("step", i))
    waited = 0.0
    while n == 0 and not stop_requested() and waited < 20:  # n == 0: wait until the parent asks to stop
        time.sleep(0.05)
        waited += 0.05
    return WORKER["tag"], signal.getsignal(signal.SIGINT) == signal.SIG_IGN, stop_requested()


def test_workers_report_in_order_ignore_ctrl_c_and_stop_when_asked() -> None:
    got: list[tuple[str, int]] = []
    with SpawnPool(1, _init, ("w",)) as pool:
        fut = pool.submit(_work, 3)
        while not pool.wait_any([fut], got.append):
            pass
        assert fut.result() == ("w", True, False)

        waiting = pool.submit(_work, 0)
        pool.request_stop()
        assert waiting.result(timeout=20) == ("w", True, True)
    pool.drain(got.append)  # after the workers exited, everything they reported has arrived
    assert got == [("step", 0), ("step", 1), ("step", 2)]


def _die_or_wait(die: bool) -> int:
    if die:
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
    time.sleep(20)  # the pool stops this one when the other dies
    return 0


def test_a_dead_worker_is_told_apart_from_the_ones_the_pool_stopped_with_it() -> None:
    from concurrent.futures.process import BrokenProcessPool

    with SpawnPool(3, manager_queue=True) as pool:  # (a manager's queue has the start reports before the task runs)
        futs = {key: pool.submit_keyed(key, _die_or_wait, key == "dies") for key in ("waits", "dies")}
        later = pool.submit_keyed("later", _die_or_wait, False)  # may or may not have begun
        t0 = time.time()
        while not all(f.done() for f in futs.values()) and time.time() - t0 < 20:
            pool.wait_any(futs.values(), lambda item: None)
        for f in [*futs.values(), later]:
            assert isinstance(f.exception(timeout=20), BrokenProcessPool)
        pool.drain(lambda item: None)
    deaths = pool.deaths()
    assert set(pool.started) >= {"waits", "dies"}
    assert deaths == {pool.started["dies"]: "killed by signal 9 (SIGKILL): out of memory (the kernel's OOM killer), or a kill -9?"}


def test_the_manager_process_dying_is_a_clear_error() -> None:
    import pytest

    from lrfp.errors import WorkerPoolError

    got: list[str] = []
    with pytest.raises(WorkerPoolError) as e:
        with SpawnPool(1, manager_queue=True) as pool:
            pool.submit(report, "hello")  # the worker reports through the manager's queue
            while not got:
                pool.drain(got.append)
            os.kill(pool._manager._process.pid, signal.SIGKILL)
            pool._manager._process.join(10)
            pool.drain(lambda item: None)
    assert str(e.value).startswith("the Manager process that carries the worker processes' reports died "
                                   "(killed by signal 9 (SIGKILL)")
