"""The process entry (the ``vramtop`` script and ``python -m vramtop``).

Signals are set up before the CLI and its libraries are imported, so Ctrl-C or SIGTERM at any
moment ends with status 130 or 143 and no traceback; and a standard output that cannot take
what was written is one sentence, not the interpreter's "Exception ignored" at exit.
"""

import contextlib
import os
import signal
import sys
import types

EXIT_OUTPUT = 2  # the output cannot be written, like an unwritable -o FILE
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C's KeyboardInterrupt is, so cleanups run.
    A KeyboardInterrupt, because asyncio re-raises only those out of a task: any other
    BaseException raised inside the live view's event loop would be swallowed by its task."""

    code = EXIT_TERMINATED


_RAISES = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}


def _on_signal(signum: int, frame: types.FrameType | None) -> None:
    """Raise the signal's exception in the main thread, as Python's own Ctrl-C does, except
    inside the import machinery: an exception raised in its module-lock callback is printed as
    'Exception ignored ...' and lost; nor inside a descriptor's ``__set_name__`` while a class
    is made (a dataclass field): Python turns an exception there into a RuntimeError. There the
    signal is delivered again 10 ms later."""
    if frame is not None and (
        frame.f_code.co_filename.startswith("<frozen importlib")
        or frame.f_code.co_name == "__set_name__"
    ):
        _pending.append(signum)
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        return
    raise _RAISES[signum]


def _redeliver(signum: int, frame: types.FrameType | None) -> None:
    if _pending:
        _on_signal(_pending.pop(), frame)


_pending: list[int] = []


def _default_signals() -> None:
    # From here on a second Ctrl-C or SIGTERM ends the process at once, quietly.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> int:
    try:
        signal.signal(signal.SIGALRM, _redeliver)
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        from vramtop.cli import main as cli_main

        code = cli_main()
    except Terminated:  # before KeyboardInterrupt: it is one
        code = EXIT_TERMINATED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except SystemExit as done:  # argparse: --help, --version, a bad flag
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    return finish(code)


_quick_exit = False


def exit_quickly() -> None:
    """The mode closed everything it opened: the process ends as soon as its output is
    flushed, without the interpreter's teardown of every module (~20 ms, a tenth of a
    one-shot run). Only the entry acts on it: the tests' in-process runs go on."""
    global _quick_exit
    _quick_exit = True


def finish(code: int) -> int:
    """Flush what is left; after a signal, exit now rather than wait for workers."""
    _default_signals()
    code = flush_stdout(code)
    if _quick_exit or code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os._exit(code)
    return code


def write_stdout(text: str) -> int:
    """``text`` to standard output: 0, or EXIT_OUTPUT after one sentence on stderr when it
    cannot take it (full, closed, an I/O error). A reader that went away (``| head``) is 0."""
    out = sys.stdout
    if out is None:  # started with fd 1 closed
        return _failed("standard output is closed")
    try:
        try:
            out.write(text)
        except UnicodeEncodeError:
            # A stdout that cannot encode a label (PYTHONIOENCODING=ascii): escape, never fail.
            out.flush()
            out.buffer.write(text.encode(out.encoding or "ascii", "backslashreplace"))
        out.flush()
    except BrokenPipeError:
        silence_stdout()
    except (OSError, ValueError) as err:  # ValueError: the file object was closed
        return _failed(getattr(err, "strerror", None) or "it is closed")
    return 0


def flush_stdout(code: int) -> int:
    if sys.stdout is None:
        return code
    return write_stdout("") or code


def _failed(reason: str) -> int:
    silence_stdout()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f"vramtop: cannot write the output: {reason}", file=sys.stderr, flush=True)
    return EXIT_OUTPUT


def silence_stdout() -> None:
    """Point fd 1 at /dev/null: the interpreter's last flush then has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
