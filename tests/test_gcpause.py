"""The collector's hold: nested and concurrent holders, and the state it found restored."""

from __future__ import annotations

import gc
import threading

from vramtop.sources import gcpause


def test_the_last_holder_out_restores_what_it_found():
    assert gc.isenabled()
    with gcpause.held():
        assert not gc.isenabled()
        with gcpause.held():
            assert not gc.isenabled()
        assert not gc.isenabled(), "an inner holder leaving must not re-enable it"
    assert gc.isenabled()
    gc.disable()
    try:
        with gcpause.held():
            pass
        assert not gc.isenabled(), "disabled before: left disabled"
    finally:
        gc.enable()


def test_concurrent_holders_on_threads():
    inside, leave = threading.Barrier(3), threading.Event()

    def hold():
        with gcpause.held():
            inside.wait(5)
            leave.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait(5)
    assert not gc.isenabled()
    leave.set()
    for t in threads:
        t.join(5)
    assert gc.isenabled()
