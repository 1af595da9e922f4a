"""A co-simulated serial board: dnpu_uart_top (the NPU, its on-chip memory and the UART bridge)
under Verilator, its UART served on a local TCP port, so that the `serial` backend, and a
user with a second terminal, talk to it as to a board on a USB-UART.

    board = SerialBoard("sim")          # builds (cached) and starts the server thread
    board.url                           # socket://127.0.0.1:PORT
    dnpu.runtime.open("serial", port=board.url)

    python -m dnpu.runtime.cosim serve-serial --profile sim --port 5555

The library (cosim/uart_harness.cpp, cosim/uart_cosim.h) is built by
dnpu.runtime.cosim.build with top dnpu_uart_top, the bit time shortened to
hw/serial.toml's sim_clks_per_bit (the protocol is unchanged). The server accepts one
client at a time; while one is connected it moves bytes between the socket and the model's
queues and clocks the model while bytes are queued or on the line, the bridge is inside a
frame or the NPU is busy, and sleeps on the socket otherwise (the simulated time stands
still while nothing happens). `dnpu.runtime.open("serial")` without a port takes an idle
board of its profile from this process's pool (`acquire`) or starts one.
"""

from __future__ import annotations

import ctypes
import functools
import select
import socket
import threading

from dnpu.runtime.cosim.binding import CosimError, load_library
from dnpu.runtime.cosim.build import UART_TOP, ensure_built

__all__ = ["SerialBoard", "UartModel", "acquire", "ABI_VERSION"]

ABI_VERSION = 1                # cosim/uart_cosim.h DNPU_UART_ABI_VERSION
STEP_CYCLES = 20_000           # cycles per step call while something happens (a few bytes' worth)
IDLE_WAIT_S = 0.05             # socket wait while the board is quiet
SEND_TIMEOUT_S = 30.0          # a reply the client does not take within this ends the session


class _State(ctypes.Structure):
    """dnpu_cosim_uart_state (cosim/uart_cosim.h)."""
    _fields_ = [("cycles", ctypes.c_uint64), ("cycle", ctypes.c_uint64), ("in_pending", ctypes.c_uint64),
                ("out_pending", ctypes.c_uint64), ("busy", ctypes.c_uint32), ("link_idle", ctypes.c_uint32),
                ("rx_idle", ctypes.c_uint32), ("reserved", ctypes.c_uint32)]


_P = ctypes.c_void_p
_SIGS = {
    "dnpu_cosim_uart_abi_version": (ctypes.c_int, []),
    "dnpu_cosim_uart_build_info": (ctypes.c_char_p, []),
    "dnpu_cosim_uart_create": (_P, []),
    "dnpu_cosim_uart_destroy": (None, [_P]),
    "dnpu_cosim_uart_error": (ctypes.c_char_p, [_P]),
    "dnpu_cosim_uart_reset": (ctypes.c_int, [_P, ctypes.c_uint32]),
    "dnpu_cosim_uart_send": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_uint64]),
    "dnpu_cosim_uart_recv": (ctypes.c_int64, [_P, ctypes.c_void_p, ctypes.c_uint64]),
    "dnpu_cosim_uart_step": (ctypes.c_int, [_P, ctypes.c_uint64, ctypes.c_int, ctypes.POINTER(_State)]),
    "dnpu_cosim_uart_get": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]),
}


@functools.lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    return load_library(path, _SIGS, "dnpu_cosim_uart_abi_version", ABI_VERSION, "serial board")


class UartModel:
    """One dnpu_uart_top model: byte queues on its UART, the clock stepped on request. Every
    call holds the model's lock (the C side allows one thread per handle)."""

    def __init__(self, lib_path) -> None:
        self._lock = threading.RLock()
        self._h = None
        self._lib = _load(str(lib_path))
        h = self._lib.dnpu_cosim_uart_create()
        if not h:
            raise CosimError(self._lib.dnpu_cosim_uart_error(None).decode())
        self._h = h
        self.build_info = self._lib.dnpu_cosim_uart_build_info().decode()
        self.state = _State()

    def _handle(self):
        if self._h is None:
            raise CosimError("the serial board model is closed")
        return self._h

    def _fail(self, what: str) -> CosimError:
        return CosimError(f"{what}: {self._lib.dnpu_cosim_uart_error(self._h).decode()}")

    def close(self) -> None:
        with self._lock:
            if self._h is not None:
                self._lib.dnpu_cosim_uart_destroy(self._h)
                self._h = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def reset(self, cycles: int = 4) -> None:
        with self._lock:
            if self._lib.dnpu_cosim_uart_reset(self._handle(), int(cycles)) < 0:
                raise self._fail("reset")

    def send(self, data: bytes) -> None:
        with self._lock:
            self._lib.dnpu_cosim_uart_send(self._handle(), bytes(data), len(data))

    def recv(self, n: int = 65536) -> bytes:
        with self._lock:
            buf = ctypes.create_string_buffer(n)
            k = self._lib.dnpu_cosim_uart_recv(self._handle(), buf, n)
            return buf.raw[:k]

    def step(self, max_cycles: int, stop_when_quiet: bool = True) -> _State:
        """Clock up to max_cycles (fewer once quiet); the state after it (cosim/uart_cosim.h)."""
        with self._lock:
            if self._lib.dnpu_cosim_uart_step(self._handle(), int(max_cycles), int(stop_when_quiet),
                                              ctypes.byref(self.state)) < 0:
                raise self._fail("step")
            return self.state

    def get(self, name: str) -> int:
        with self._lock:
            v = ctypes.c_int64()
            if self._lib.dnpu_cosim_uart_get(self._handle(), name.encode(), ctypes.byref(v)) < 0:
                raise self._fail(f"get({name!r})")
            return v.value

    def quiet(self) -> bool:
        s = self.state
        return not s.in_pending and not s.out_pending and s.link_idle and s.rx_idle and not s.busy


class SerialBoard:
    """dnpu_uart_top served on 127.0.0.1:`port` (0: a free one) by a daemon thread."""

    def __init__(self, profile: str = "sim", *, port: int = 0, host: str = "127.0.0.1", log=None,
                 cache_dir=None) -> None:
        self.profile = profile
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # first: a busy port fails at once
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, int(port)))
            self._sock.listen(1)
        except OSError as e:
            self._sock.close()
            raise OSError(f"cannot serve the serial board on {host}:{port}: {e.strerror or e}") from None
        try:
            self.build = ensure_built(profile, top=UART_TOP, log=log, cache_dir=cache_dir)
            self.model = UartModel(self.build.path)
            self.model.step(1)                 # its state (quiet or not) known before the first client
        except BaseException:
            self._sock.close()
            raise
        self.host, self.port = self._sock.getsockname()[:2]
        self.url = f"socket://{self.host}:{self.port}"
        self.clients = 0
        self.error: str | None = None            # why the server stopped, if it did
        self._stop = threading.Event()
        self._in_use = False
        self._thread = threading.Thread(target=self._serve, name=f"dnpu-serial-board-{self.port}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<dnpu co-simulated serial board, profile {self.profile}, {self.url}>"

    def __enter__(self) -> "SerialBoard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the pool of `acquire` ----------------------------------------------------------------
    def release(self) -> None:
        """Hand the board back to the pool (its client has closed the connection)."""
        with _POOL_LOCK:
            self._in_use = False

    def hard_reset(self) -> None:
        """rst_n: the whole board, bridge and NPU, back to its power-on state (memory kept)."""
        self.model.reset(4)

    def close(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.model.close()
        with _POOL_LOCK:
            if self in _POOL.get(self.profile, []):
                _POOL[self.profile].remove(self)

    # ---- the server ---------------------------------------------------------------------------
    def _serve(self) -> None:
        self._sock.settimeout(IDLE_WAIT_S * 4)
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                self.clients += 1
                with conn:
                    self._session(conn)
        except Exception as e:         # the model failed: clients see the port close
            self.error = f"{type(e).__name__}: {e}"

    def _session(self, conn: socket.socket) -> None:
        m = self.model
        m.recv()                       # a reply the last client left unread is not this one's
        conn.setblocking(False)
        while not self._stop.is_set():
            active = not m.quiet()
            r, _, _ = select.select([conn], [], [], 0 if active else IDLE_WAIT_S)
            if r:
                try:
                    data = conn.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    return
                if data == b"":
                    return                         # the client closed its end
                if data:
                    m.send(data)
                    active = True
            if active:
                m.step(STEP_CYCLES)
                out = m.recv()
                if out:
                    try:
                        conn.settimeout(SEND_TIMEOUT_S)     # a client that stops reading ends its session
                        conn.sendall(out)
                        conn.setblocking(False)
                    except OSError:
                        return


_POOL: dict[str, list[SerialBoard]] = {}
_POOL_LOCK = threading.Lock()


def acquire(config) -> SerialBoard:
    """An idle co-simulated board of config's profile from this process's pool, else a new one;
    release() hands it back. Its memory and registers are as the last user left them (a board
    keeps its state between connections)."""
    name = config.name
    with _POOL_LOCK:
        for b in _POOL.get(name, []):
            if not b._in_use and b._thread.is_alive():
                b._in_use = True
                return b
    b = SerialBoard(name)
    b._in_use = True
    with _POOL_LOCK:
        _POOL.setdefault(name, []).append(b)
    return b
