"""The worker process: one loaded model, ``srgan upscale`` calls served one at a time.

Clients connect to a Unix socket in the user's private directory (``paths``); a peer of
another uid is dropped before it can say anything. Each call is queued in arrival order
(so ``make -j`` clients take turns fairly) and then run on the main thread exactly as the
command would run in-process: in the client's working directory and umask, with stdin,
stdout and stderr forwarded over the connection, and ``load_upscaler`` handing out the held
model. A client's cancel (Ctrl-C) or hang-up interrupts its call like Ctrl-C interrupts
the command in-process (``SIGUSR1`` to the main thread raises KeyboardInterrupt between
tiles), so ``write_atomic`` leaves no partial file. With no call for ``idle_timeout``
seconds the worker removes its socket and exits.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import struct
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import click

from srgan_cli import __version__
from srgan_cli.errors import EXIT_INTERRUPTED, SrganError
from srgan_cli.worker import protocol
from srgan_cli.worker.call import Call, call_streams
from srgan_cli.worker.held import HeldModel, InjectedModel, local_only_option
from srgan_cli.worker.paths import SOCKET_PATH_MAX, private_dir

CANCEL_SIGNAL = signal.SIGUSR1
_PEERCRED = struct.Struct("3i")


class Worker:
    """Serves ``command`` calls with ``held`` on ``socket_path`` until idle ``idle_timeout`` s.

    ``command`` is ``srgan upscale``, handed in by ``srgan worker run``: the worker sits below
    the CLI and never imports it.
    """

    def __init__(
        self, held: HeldModel, socket_path: Path, idle_timeout: float, command: click.Command
    ) -> None:
        self.held = held
        self.command = command
        self.socket_path = socket_path
        self.idle_timeout = idle_timeout
        self.started = time.time()
        self.jobs_done = 0
        self._calls: queue.Queue[Call | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closing = False
        self._last_active = time.monotonic()
        self._running: Call | None = None
        self._listener: socket.socket | None = None

    # -- life cycle ------------------------------------------------------------------------
    def listen(self) -> None:
        """Bind the socket (0600 in the private directory); a stale socket file is replaced."""
        private_dir()
        path = os.fspath(self.socket_path)
        if len(os.fsencode(path)) > SOCKET_PATH_MAX:
            raise SrganError(f"worker socket path is too long for a Unix socket: {path}")
        if _answers(path):
            raise SrganError(f"a worker is already running on {path}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        listener.listen(64)
        self._listener = listener

    def serve(self) -> None:
        """Accept in a thread, run calls here until idle, stopped or terminated."""
        assert self._listener is not None, "listen() first"
        signal.signal(CANCEL_SIGNAL, self._on_cancel_signal)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        threading.Thread(target=self._accept_loop, name="srgan-accept", daemon=True).start()
        try:
            self._run_calls()
        finally:
            self._shut_down()

    def _run_calls(self) -> None:
        while True:
            remaining = self.idle_timeout - (time.monotonic() - self._last_active)
            try:
                call = self._calls.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                if self._close_if_idle():
                    return
                continue
            if call is None:
                return
            self._run(call)
            self._last_active = time.monotonic()

    def _close_if_idle(self) -> bool:
        with self._lock:
            idle = time.monotonic() - self._last_active >= self.idle_timeout
            if idle and self._calls.empty():
                self._closing = True
            return self._closing

    def _shut_down(self) -> None:
        """Remove the socket first (new clients run in-process), then decline what queued."""
        with self._lock:
            self._closing = True
        if self._listener is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
            self._listener.close()
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                return
            if call is not None:
                call.decline("the worker is exiting")
                call.conn.close()

    def stop(self) -> None:
        """Take no new calls, finish the ones already queued, then exit (``srgan worker stop``)."""
        with self._lock:
            self._closing = True
        self._calls.put(None)

    # -- connections (threads) ---------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            if peer_uid(conn) != os.getuid():
                conn.close()
                continue
            threading.Thread(target=self._converse, args=(conn,), daemon=True).start()

    def _converse(self, conn: socket.socket) -> None:
        """Read one request; answer status/stop here, queue an upscale call and watch it."""
        try:
            frame = protocol.recv_frame(conn)
            if frame is None or frame[0] != protocol.REQUEST:
                conn.close()
                return
            request = protocol.decode_json(frame[1])
        except (OSError, protocol.ProtocolError):
            conn.close()
            return
        op = request.get("op")
        if op == "status":
            _reply_and_close(conn, self.status())
        elif op == "stop":
            _reply_and_close(conn, {"stopping": True, "pid": os.getpid()})
            self.stop()
        elif op == "upscale":
            self._queue_and_watch(Call(conn, request))
        else:
            _reply_and_close(conn, {"error": f"unknown op {op!r}"})

    def _queue_and_watch(self, call: Call) -> None:
        with self._lock:
            closing = self._closing
            if not closing:
                self._last_active = time.monotonic()
                self._calls.put(call)
        if closing:
            call.decline("the worker is exiting")
            call.conn.close()
            return
        self._watch(call)

    def _watch(self, call: Call) -> None:
        """Pass stdin chunks on; a cancel frame or a hang-up cancels the call."""
        try:
            while True:
                frame = protocol.recv_frame(call.conn)
                if frame is None or frame[0] == protocol.CANCEL:
                    break
                if frame[0] == protocol.STDIN:
                    call.stdin_chunks.put(frame[1] or None)
        except (OSError, protocol.ProtocolError):
            pass
        self.cancel(call)

    def cancel(self, call: Call) -> None:
        """Stop ``call``: skipped if still queued, interrupted between tiles if running."""
        with self._lock:
            if call.interrupted:
                return
            call.interrupted = True
        call.cancelled.set()
        call.stdin_chunks.put(None)
        if self._running is call:
            signal.pthread_kill(threading.main_thread().ident or 0, CANCEL_SIGNAL)

    def _on_cancel_signal(self, signum: int, frame: object) -> None:
        running = self._running
        if running is not None and running.cancelled.is_set():
            raise KeyboardInterrupt

    def status(self) -> dict[str, Any]:
        """What ``srgan worker status`` shows."""
        upscaler = self.held.upscaler
        return {
            "pid": os.getpid(),
            "version": __version__,
            "model": upscaler.name,
            "weights": str(self.held.path),
            "precision": upscaler.precision_used,
            "uptime_s": round(time.time() - self.started, 1),
            "jobs_done": self.jobs_done,
            "busy": self._running is not None,
            "queued": self._calls.qsize(),
            "idle_timeout_s": self.idle_timeout,
            "socket": os.fspath(self.socket_path),
        }

    # -- running a call (main thread) ---------------------------------------------------------
    def _run(self, call: Call) -> None:
        try:
            code = self._serve(call)
        except KeyboardInterrupt:  # a cancel landing between the call's end and here
            code = EXIT_INTERRUPTED
        if code is not None:
            self.jobs_done += 1  # before the client hears it: its next status must count it
            call.send_json(protocol.EXIT, {"code": code})
        call.conn.close()

    def _serve(self, call: Call) -> int | None:
        """Run the call if this worker can; None when declined (the client runs it itself)."""
        if call.cancelled.is_set():
            return EXIT_INTERRUPTED
        request = call.request
        if request.get("version") != __version__:
            call.decline(f"the worker runs srgan {__version__}")
            return None
        try:
            os.chdir(request["cwd"])
            os.umask(int(request["umask"]))
            argv = ["--no-worker", *request["argv"]]  # never forward again from in here
            ctx = self.command.make_context(
                self.command.name, argv, obj=InjectedModel(self.held, call.wrote)
            )
        except (OSError, KeyError, TypeError, ValueError, click.ClickException) as err:
            call.decline(f"cannot take the call here: {err}")
            return None
        reason = self._refusal(ctx.params)
        if reason is not None:
            call.decline(reason)
            return None
        call.send_json(protocol.REPLY, {"accept": True})
        with call_streams(call):
            return self._invoke(ctx, call)

    def _refusal(self, params: dict[str, Any]) -> str | None:
        option = local_only_option(params)
        if option is not None:
            return f"{option} runs in the calling process"
        try:
            return self.held.refusal(
                params.get("model"), params.get("weights"), params["precision"]
            )
        except (SrganError, OSError) as err:
            return str(err)

    def _invoke(self, ctx: click.Context, call: Call) -> int:
        """The ``upscale`` command on this call; the exit code the CLI would give."""
        self._running = call
        try:
            if call.cancelled.is_set():
                raise KeyboardInterrupt
            with ctx:
                ctx.command.invoke(ctx)
            return 0
        except click.exceptions.Exit as done:
            return done.exit_code
        except click.ClickException as err:
            err.show()
            return err.exit_code
        except SrganError as err:
            click.echo(f"Error: {err}", err=True)
            return err.exit_code
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED  # the client prints "Interrupted", as in-process
        except Exception:
            traceback.print_exc()
            return 1
        finally:
            self._running = None


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end (Linux ``SO_PEERCRED``); -1 if unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return -1
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)
    except OSError:
        return -1
    return _PEERCRED.unpack(creds)[1]


def _reply_and_close(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        protocol.send_json(conn, protocol.REPLY, message)
    conn.close()


def _answers(path: str) -> bool:
    """Whether something accepts connections on ``path`` (a live worker, not a stale file)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM: unwind (the running call cleans up like Ctrl-C), remove the socket, exit."""
    raise SystemExit(0)
