"""lrfp.procpool: spawned workers that ignore Ctrl-C, report through a queue, and stop when asked."""

from __future__ import annotations

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
