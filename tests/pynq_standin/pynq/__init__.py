"""A stand-in for the `pynq` package: the subset dnpu.runtime's pynq backend uses, on the
Verilator co-simulation model instead of a board, so the board code path runs in CI.

    PYTHONPATH=tests/pynq_standin DNPU_BITSTREAM_DIR=<folder with <board>/dnpu.bit + .hwh> \
        dnpu check-sampling --backend pynq --config <board>

It lives under tests/ on purpose: a module named `pynq` must be importable as `pynq`, and
only a test (or a person who asks for it with PYTHONPATH) may put one on the path; on a
board the real package is found. Implemented, after PYNQ 3.x:

  Overlay(bitfile_name, download=True)   needs the .bit (its contents are not read) and
                                         parses the .hwh beside it into ip_dict (phys_addr,
                                         addr_range, type, parameters, registers, ...);
                                         download() "programs the PL": a fresh Verilator
                                         model of the profile named by the NPU's
                                         DNPU_PROFILE parameter (DRAM contents are kept)
  MMIO(base_addr, length)                read(offset) / write(offset, value) of 32-bit words,
                                         inside an IP window of the loaded overlay; each
                                         access is one AXI4-Lite transaction on the model,
                                         after MMIO_LATENCY cycles of PS interconnect
  allocate(shape, dtype)                 a PynqBuffer (numpy subclass) at a physical address
                                         in a CMA-like range, mapped into the model's DRAM at
                                         that address; slices keep device_address / offset;
                                         coherent = False, as a cacheable buffer on Zynq
  PynqBuffer.flush() / invalidate()      the cache: the array is the CPU's view; flush copies
                                         it to DRAM (what the NPU reads), invalidate copies
                                         DRAM back; so a missing flush or invalidate shows
  PynqBuffer.freebuffer() / close()

Not implemented: interrupts, GPIO, DMA drivers, xclbin devices, partial reconfiguration.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

__version__ = "3.0.1+dnpu.standin"
STANDIN = True

CMA_BASE = 0x1800_0000          # physical addresses of allocate() buffers (inside a Zynq-7020's 512 MiB)
CMA_SIZE = 0x0800_0000          # 128 MiB, PYNQ-Z2's default CMA
PAGE = 4096
MMIO_LATENCY = 8                # PL cycles a PS access spends in the interconnect before the slave


class _PL:
    """The programmable logic: the loaded overlay's model and the CMA allocations."""
    model = None
    profile: str | None = None
    ip_dict: dict = {}
    bitfile: str | None = None
    allocs: dict[int, int] = {}      # physical address -> bytes (live allocations)
    next_addr = CMA_BASE


def _require_model():
    if _PL.model is None:
        raise RuntimeError("pynq stand-in: no overlay is loaded (create pynq.Overlay(...) first)")
    return _PL.model


# ---- .hwh --------------------------------------------------------------------------------

def _prop(elem, name: str) -> str:
    p = elem.find(f"./PROPERTY[@NAME='{name}']")
    if p is None:
        raise ValueError(f"register {elem.get('NAME')}: no PROPERTY {name}")
    return p.get("VALUE")


def _num(s: str) -> int:
    return int(s, 16 if s.lower().startswith("0x") else 10)


def parse_hwh(path: str | Path) -> dict:
    """ip_dict of a .hwh: every MEMRANGE of the processing system's memory map, keyed by the
    instance's full name, with the fields PYNQ's HWH parser gives. A file that is not such
    XML (truncated, not UTF-8, a missing attribute or property, a bad number) raises
    ValueError naming the file, never another type; OSError when it cannot be read."""
    try:
        return _parse_hwh(path)
    except ET.ParseError as e:
        raise ValueError(f"{path}: not a well-formed .hwh (XML): {e}") from None
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise ValueError(f"{path}: not a .hwh of the expected shape: {type(e).__name__}: {e}") from None


def _parse_hwh(path: str | Path) -> dict:
    root = ET.parse(path).getroot()
    modules = {m.get("INSTANCE"): m for m in root.iter("MODULE")}
    ps = [m for m in modules.values() if m.get("MODTYPE") in ("processing_system7", "zynq_ultra_ps_e")]
    if len(ps) != 1:
        raise ValueError(f"{path}: expected one processing system module, found {len(ps)}")
    out = {}
    for mr in ps[0].iter("MEMRANGE"):
        inst = modules.get(mr.get("INSTANCE"))
        if inst is None:
            continue
        name = inst.get("FULLNAME").lstrip("/")
        base, high = _num(mr.get("BASEVALUE")), _num(mr.get("HIGHVALUE"))
        regs = {}
        for r in inst.findall(".//REGISTERS/REGISTER"):
            regs[r.get("NAME")] = {
                "address_offset": _num(_prop(r, "ADDRESS_OFFSET")), "size": _num(_prop(r, "SIZE")),
                "access": _prop(r, "ACCESS"), "description": _prop(r, "DESCRIPTION"),
                "fields": {f.get("NAME"): {"bit_offset": _num(_prop(f, "BIT_OFFSET")),
                                           "bit_width": _num(_prop(f, "BIT_WIDTH")),
                                           "access": _prop(f, "ACCESS"), "description": _prop(f, "DESCRIPTION")}
                           for f in r.findall("./FIELDS/FIELD")}}
        out[name] = {"fullpath": name, "type": inst.get("VLNV"), "bdtype": None, "state": None,
                     "phys_addr": base, "addr_range": high - base + 1, "mem_id": mr.get("SLAVEBUSINTERFACE"),
                     "gpio": {}, "interrupts": {},
                     "parameters": {p.get("NAME"): p.get("VALUE") for p in inst.findall("./PARAMETERS/PARAMETER")},
                     "registers": regs}
    return out


# ---- Overlay --------------------------------------------------------------------------------

class DefaultIP:
    def __init__(self, description: dict) -> None:
        self.description = description
        self.mmio = MMIO(description["phys_addr"], description["addr_range"])

    def read(self, offset: int = 0) -> int:
        return self.mmio.read(offset)

    def write(self, offset: int, value) -> None:
        self.mmio.write(offset, value)


class Overlay:
    def __init__(self, bitfile_name, dtbo=None, download: bool = True, ignore_version: bool = False,
                 device=None, gen_cache: bool = False) -> None:
        bit = Path(bitfile_name)
        if not bit.is_file():
            raise IOError(f"Bitstream file {bitfile_name} does not exist.")
        hwh = bit.with_suffix(".hwh")
        if not hwh.is_file():
            raise ValueError(f"Cannot find HWH file {hwh}.")
        self.bitfile_name = str(bit.resolve())
        self.hwh_name = str(hwh)
        self.ip_dict = parse_hwh(hwh)
        npu = [d for d in self.ip_dict.values() if "DNPU_PROFILE" in d["parameters"]]
        if len(npu) != 1:
            raise ValueError(f"pynq stand-in: {hwh} has {len(npu)} IP(s) with a DNPU_PROFILE parameter; "
                             f"it backs exactly one dnpu NPU with the Verilator model")
        self.profile = npu[0]["parameters"]["DNPU_PROFILE"]
        if download:
            self.download()

    def download(self) -> None:
        """Program the PL: a fresh model of the profile (registers, SRAMs and counters at their
        power-on values); DRAM, which lives outside the PL, keeps the allocations' contents."""
        from dnpu.spec import config
        from dnpu.runtime import cosim

        old = _PL.model
        saved = {a: old.read(a, n) for a, n in _PL.allocs.items()} if old is not None else {}
        cfg = config.load(self.profile)
        build = cosim.ensure_built(self.profile)
        model = cosim.Model(build.path, clock_period_ps=max(1, round(1e6 / cfg.clock.f_clk_mhz)))
        model.set("read_latency", cfg.memory.read_latency)
        model.set("write_latency", cfg.memory.read_latency)
        model.set("bytes_per_cycle", cfg.memory.bytes_per_cycle)
        for a, data in saved.items():
            model.map(a, len(data))
            model.write(a, data)
        if old is not None:
            old.close()
        _PL.model, _PL.profile, _PL.ip_dict, _PL.bitfile = model, self.profile, self.ip_dict, self.bitfile_name

    def is_loaded(self) -> bool:
        return _PL.bitfile == self.bitfile_name and _PL.model is not None

    def __getattr__(self, name: str):
        ips = self.__dict__.get("ip_dict", {})
        if name in ips:
            return DefaultIP(ips[name])
        raise AttributeError(f"overlay has no attribute or IP {name!r}")


# ---- MMIO -------------------------------------------------------------------------------------

class MMIO:
    def __init__(self, base_addr: int, length: int = 4, debug: bool = False, device=None) -> None:
        _require_model()
        self.base_addr, self.length = int(base_addr), int(length)
        ip = next((d for d in _PL.ip_dict.values()
                   if d["phys_addr"] <= self.base_addr and self.base_addr + self.length <= d["phys_addr"] + d["addr_range"]),
                  None)
        if ip is None:
            raise ValueError(f"pynq stand-in: no IP window of the loaded overlay holds "
                             f"[0x{self.base_addr:X}, +0x{self.length:X})")
        self._window_off = self.base_addr - ip["phys_addr"]

    def _offset(self, offset: int, length: int) -> int:
        if offset < 0 or offset + length > self.length:
            raise ValueError(f"MMIO offset 0x{offset:X} (+{length}) outside the mapped 0x{self.length:X} bytes")
        if offset % 4:
            raise MemoryError("Unaligned read: offset must be multiple of 4.")
        return self._window_off + offset

    def read(self, offset: int = 0, length: int = 4, word_order: str = "little") -> int:
        if length not in (4, 8):
            raise ValueError("MMIO currently only supports 4 and 8-byte reads.")
        off = self._offset(int(offset), length)
        m = _require_model()
        m.step(MMIO_LATENCY)
        lo = m.csr_read(off)
        if length == 4:
            return lo
        hi = m.csr_read(off + 4)
        return (lo | hi << 32) if word_order == "little" else (hi | lo << 32)

    def write(self, offset: int, data) -> None:
        if isinstance(data, (bytes, bytearray)):
            if len(data) % 4:
                raise MemoryError("Unaligned write: data length must be multiple of 4.")
            words = np.frombuffer(bytes(data), "<u4").tolist()
        else:
            words = [int(data) & 0xFFFF_FFFF]
        off = self._offset(int(offset), 4 * len(words))
        m = _require_model()
        for k, w in enumerate(words):
            m.step(MMIO_LATENCY)
            m.csr_write(off + 4 * k, w)


# ---- allocate ------------------------------------------------------------------------------------

class PynqBuffer(np.ndarray):
    def __new__(cls, *args, device_address: int = 0, coherent: bool = False, **kwargs):
        self = super().__new__(cls, *args, **kwargs)
        self.device_address = device_address
        self.coherent = coherent
        self.offset = 0
        self._root = True
        return self

    def __array_finalize__(self, obj) -> None:
        if isinstance(obj, PynqBuffer) and getattr(obj, "coherent", None) is not None:
            off = self.virtual_address - obj.virtual_address
            self.coherent = obj.coherent
            self.device_address = obj.device_address + off
            self.offset = obj.offset + off
        else:
            self.device_address = None
            self.coherent = None
            self.offset = 0
        self._root = False

    @property
    def physical_address(self):
        return self.device_address

    @property
    def virtual_address(self) -> int:
        return self.__array_interface__["data"][0]

    @property
    def cacheable(self) -> bool:
        return not self.coherent

    def _bytes_view(self) -> np.ndarray:
        if not self.flags.c_contiguous:
            raise ValueError("pynq stand-in: flush/invalidate of a non-contiguous view")
        return self.view(np.ndarray).reshape(-1).view(np.uint8)

    def flush(self) -> None:
        """CPU caches -> DRAM: the NPU sees what the host wrote."""
        if self.device_address is None or self.nbytes == 0:
            return
        _require_model().write(self.device_address, self._bytes_view().tobytes())

    def invalidate(self) -> None:
        """DRAM -> the CPU's view: the host sees what the NPU wrote."""
        if self.device_address is None or self.nbytes == 0:
            return
        raw = _require_model().read(self.device_address, self.nbytes)
        self._bytes_view()[:] = np.frombuffer(raw, np.uint8)

    def freebuffer(self) -> None:
        if getattr(self, "_root", False) and self.device_address in _PL.allocs:
            del _PL.allocs[self.device_address]
            if not _PL.allocs:
                _PL.next_addr = CMA_BASE

    def close(self) -> None:
        self.freebuffer()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.freebuffer()


def allocate(shape, dtype="u1", target=None, **kwargs) -> PynqBuffer:
    """A physically contiguous buffer (page-aligned) mapped into the model's DRAM."""
    m = _require_model()
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    size = max(PAGE, -(-nbytes // PAGE) * PAGE)
    addr = _PL.next_addr
    if addr + size > CMA_BASE + CMA_SIZE:
        raise RuntimeError(f"Failed to allocate Memory! ({size} bytes; {CMA_BASE + CMA_SIZE - addr} left "
                           f"of the stand-in's {CMA_SIZE >> 20} MiB CMA)")
    m.map(addr, size)
    _PL.next_addr = addr + size
    _PL.allocs[addr] = size
    return PynqBuffer(shape, dt, device_address=addr, coherent=False)
