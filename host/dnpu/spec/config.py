"""Hardware profiles: `hw/config/<profile>.toml`, validated into a frozen object.

The TOML files are the single source of every hardware parameter. This module
holds their schema (which keys exist, their types and limits); everything else
(generated Verilog headers, the emulator, the compiler, the runtime's attach
check) reads a loaded `Config`.

`load` checks a profile file against everything the RTL, the emulator and the compiler
assume of it (the key ranges in SCHEMA, `_cross_check`, and the build limits in BUILD_RULES
and MAX_SRAM_BYTES), so a profile that could not work is refused there, never later: every
problem is one ConfigError (a ValueError) naming the file, the key and the accepted range.
SCHEMA's ranges are wider than BUILD_RULES': the performance model's in-memory variants
(dnpu.perf.analytical.variant) project designs beyond what the RTL builds today.

`Config.label` is the name to report: the profile's name when its config hash is the one
the RTL headers in hw/rtl/generated were generated from, else the name with the file and
the first 8 hex digits of its config hash (`sim (modified: /tmp/sim.toml, config
0172c9a9)`), so an edited copy that keeps `name = "sim"` is never taken for `sim`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10 (a PYNQ image's): the same parser as tomli
    import tomli as tomllib

from dnpu.spec import resources
from dnpu.spec.numerics import FP_MAX_STAGES

__all__ = ["Config", "ConfigError", "load", "profiles", "hw_dir", "shipped_hash", "sram_bytes", "HASHED_SECTIONS",
           "BUILD_RULES", "REQUIRED_MX_FORMAT", "COMPILER_LOOP_DEPTH", "MAX_SRAM_BYTES",
           "ZYNQ_PART_PREFIXES", "FPGA_HOSTS", "is_zynq_board"]

# The MX format the compiler defaults to everywhere (weights, logits, KV cache): a
# profile whose prefetch engine cannot decode it cannot run a compiled model.
REQUIRED_MX_FORMAT = "e4m3"
# Part-number prefixes of the FPGA families with a processing system dnpu.codegen's .hwh
# describes (dnpu.codegen.emit_hwh.PS_FAMILIES; a test keeps the two equal).
ZYNQ_PART_PREFIXES = ("xc7z", "xczu")
# [profile] host values of an fpga profile; the first is the default.
FPGA_HOSTS = ("zynq-ps", "serial", "none")
# The deepest hardware-loop nesting a compiled program uses (the sampling step's batch and
# row loops); tests/test_profile_checks.py measures it.
COMPILER_LOOP_DEPTH = 2
# All three SRAMs together: 8 times asic-2048's 2 MiB, more than any die this design
# targets; the emulator and the co-simulation hold every SRAM whole in host memory.
MAX_SRAM_BYTES = 16 << 20


class ConfigError(ValueError):
    """A hardware profile that is missing, malformed or out of range."""


def hw_dir() -> Path:
    """The `hw/` folder: `$DNPU_HW_DIR`, else the package's (dnpu.spec.resources)."""
    env = os.environ.get("DNPU_HW_DIR")
    if env:
        return Path(env)
    return resources.data_root() / "hw"


def _pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def _check(pred: Callable[[Any], bool], what: str) -> Callable[[Any], str | None]:
    return lambda v: None if pred(v) else what


def _one_of(*allowed: Any) -> Callable[[Any], str | None]:
    return _check(lambda v: v in allowed, "one of " + ", ".join(map(str, allowed)))


def _pow2_in(lo: int, hi: int) -> Callable[[Any], str | None]:
    return _check(lambda v: _pow2(v) and lo <= v <= hi, f"a power of two from {lo} to {hi}")


def _int_in(lo: int, hi: int) -> Callable[[Any], str | None]:
    return _check(lambda v: lo <= v <= hi, f"an integer from {lo} to {hi}")


def _mx_formats(v: list) -> str | None:
    from dnpu.spec.mx import FORMATS  # the format table's one home

    bad = [f for f in v if f not in FORMATS]
    if bad or not v or len(set(v)) != len(v):
        return f"a non-empty list of distinct MX formats from {sorted(FORMATS)} (bad: {bad})"
    return None


# section -> key -> (type, validator or None, required, doc)
_Field = tuple[type, Callable[[Any], str | None] | None, bool, str]
SCHEMA: dict[str, dict[str, _Field]] = {
    "profile": {
        "name": (str, None, True, "profile name"),
        "description": (str, None, True, "one line for humans"),
        "target": (str, _one_of("sim", "fpga", "asic"), True, "what the profile is for"),
        "part": (str, None, False, "FPGA part number (fpga targets)"),
        "host": (str, _one_of(*FPGA_HOSTS), False,
                 "fpga targets: what drives the NPU's AXI ports: zynq-ps (the default; a Zynq's processing "
                 "system, for which dnpu.codegen writes the board's .hwh and Vivado build), serial (no "
                 "processor: dnpu_uart_top's UART bridge and on-chip memory, driven by a computer over a "
                 "USB-UART with the serial backend; any part) or none (no board: resource and timing builds "
                 "of the NPU alone, any part)"),
    },
    "clock": {
        "f_clk_mhz": (float, _check(lambda v: 0 < v <= 5000, "a frequency in MHz, > 0"), True, "core clock"),
    },
    "vector": {
        "vlen": (int, _pow2_in(2, 4096), True, "vector lanes (BF16 elements per vector-SRAM row)"),
        "lanes": (int, _pow2_in(1, 4096), True,
                  "arithmetic lanes of the vector unit: a row goes through them in vlen/lanes cycles"),
    },
    "pipeline": {
        "add_stages": (int, _int_in(1, FP_MAX_STAGES["add"]), False,
                       "pipeline stages of the NPU's FP32 adders (vector unit and scalar FPU; 1: a single "
                       "cycle; more cut the longest paths for a faster clock, a cycle of latency each)"),
        "mul_stages": (int, _int_in(1, FP_MAX_STAGES["mul"]), False,
                       "pipeline stages of its FP32 multipliers (as add_stages)"),
        "exp_stages": (int, _int_in(1, FP_MAX_STAGES["exp"]), False, "pipeline stages of its EXP units (as add_stages)"),
        "decode_stage": (int, _int_in(0, 1), False,
                         "1: the controller decodes and reads registers in a cycle of its own (FETCH -> "
                         "DECODE -> EXEC), a cycle more per instruction for a shorter EXEC"),
        "max_tree_stages": (int, _int_in(0, 12), False,
                            "registers in the vector unit's row-maximum tree (at most log2(vlen)): each is a "
                            "cycle more for V_RED_MAX(_IDX), V_RED_SUM and H_SAMPLE_FUSED(_N)'s positions"),
        "result_regs": (int, _int_in(0, 1), False,
                        "1: a register after the pipelined FP results where more logic follows: the vector "
                        "unit's S5 product and sum (H_SAMPLE_FUSED's row period max(chunks, mul + add "
                        "stages)) and its lanes' results into the write row (an elementwise row a cycle "
                        "more), the scalar FPU's adder, multiplier and EXP (a cycle more each), and the element "
                        "before top-k's compare (V_TOPK_MASK(_V): a cycle more per element pair)"),
    },
    "sram": {
        "vector_rows": (int, _pow2_in(16, 1 << 20), True, "vector SRAM depth in rows"),
        "fp_words": (int, _pow2_in(16, 1 << 20), True, "FP SRAM depth in FP32 words"),
        "int_words": (int, _pow2_in(16, 1 << 20), True, "int SRAM depth in 32-bit words"),
    },
    "ctrl": {
        "loop_depth": (int, _int_in(1, 16), True, "nested hardware loops"),
        "fetch_words": (int, _pow2_in(1, 256), True, "instruction fetch burst in 32-bit words"),
    },
    "mx": {
        "block": (int, _pow2_in(8, 64), True, "MX block size (elements per shared scale)"),
        "formats": (list, _mx_formats, True, "MX element formats the prefetch engine decodes"),
    },
    "matrix": {
        "rows": (int, _check(lambda v: v == 0 or (_pow2(v) and v <= 256), "0 or a power of two up to 256"), True,
                 "activation rows the matrix unit multiplies at once (its columns are vector.vlen); 0 = no matrix unit"),
        "weight_buffers": (int, _pow2_in(2, 64), True,
                           "weight squares (vlen weight rows x mx.block) buffered between the MX decoder and the array"),
    },
    "axi": {
        "data_width": (int, _one_of(64, 128, 256, 512), True, "AXI4 master data bits (dnpu_axi_wr needs at least 64)"),
        "addr_width": (int, _int_in(32, 64), True, "AXI4 master address bits"),
        "max_burst": (int, _pow2_in(1, 256), True, "beats per AXI4 burst"),
        "id_width": (int, _int_in(1, 16), True, "AXI4 ID bits"),
        "read_bursts": (int, _int_in(1, 16), False,
                        "read bursts the NPU keeps in flight: a long read streams at most read_bursts * "
                        "max_burst beats per (memory.read_latency + max_burst + 1) cycles"),
    },
    "memory": {
        "read_latency": (int, _int_in(0, 100000), True, "cycles from AR handshake to first R beat"),
        "bytes_per_cycle": (int, _int_in(1, 1 << 16), True, "sustained memory bandwidth"),
    },
}

# Values of optional keys a profile leaves out (other optional keys stay None: absent).
DEFAULTS: dict[tuple[str, str], Any] = {("pipeline", "add_stages"): 1, ("pipeline", "mul_stages"): 1,
                                        ("pipeline", "exp_stages"): 1, ("pipeline", "decode_stage"): 0,
                                        ("pipeline", "max_tree_stages"): 0, ("pipeline", "result_regs"): 0,
                                        ("axi", "read_bursts"): 4}

# What config_hash covers: every parameter that changes the RTL. Not the name or
# description, not the clock (same RTL, other timing) and not the memory model.
HASHED_SECTIONS = ("vector", "pipeline", "sram", "ctrl", "mx", "matrix", "axi")


def _section_class(section: str) -> type:
    fields = [(k, t if k not in ("formats",) else tuple, dataclasses.field(default=None))
              for k, (t, _, _, _) in SCHEMA[section].items()]
    return dataclasses.make_dataclass(section.capitalize(), fields, frozen=True)


_SECTION_CLASSES = {s: _section_class(s) for s in SCHEMA}


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated hardware profile. Sections are frozen dataclasses named as in the TOML."""

    path: str
    profile: Any
    clock: Any
    vector: Any
    pipeline: Any
    sram: Any
    ctrl: Any
    mx: Any
    matrix: Any
    axi: Any
    memory: Any

    def sections(self) -> dict[str, dict[str, Any]]:
        return {s: dataclasses.asdict(getattr(self, s)) for s in SCHEMA}

    @property
    def config_hash(self) -> str:
        """sha256 (hex) of the hashed sections in canonical JSON: stable across key order and comments."""
        body = {s: self.sections()[s] for s in HASHED_SECTIONS}
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    @property
    def config_hash32(self) -> int:
        """The low 32 bits the NPU's CONFIG_HASH register holds."""
        return int(self.config_hash[-8:], 16)

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def label(self) -> str:
        """The name to report: `name` for a profile whose config hash is the one its RTL header
        was generated from (shipped_hash), else `name (modified: PATH, config HASH8)`, or
        `name (PATH, config HASH8)` for a name that has no generated header."""
        ref = shipped_hash(self.name)
        if ref == self.config_hash:
            return self.name
        how = "modified: " if ref is not None else ""
        return f"{self.name} ({how}{self.path}, config {self.config_hash[:8]})"

    @property
    def zynq_board(self) -> bool:
        """An fpga profile on a Zynq board ([profile] host, default zynq-ps): the profiles
        dnpu.codegen writes a .hwh and a Vivado build for, and the pynq backend runs."""
        return is_zynq_board(self.profile.target, self.profile.host)

    @property
    def matrix_cols(self) -> int:
        """The matrix unit's columns: one output row of a tile is one vector-SRAM row."""
        return self.vector.vlen if self.matrix.rows else 0

    @property
    def beat_bytes(self) -> int:
        return self.axi.data_width // 8

    @property
    def matrix_slots(self) -> int:
        """Rows each matrix PE interleaves: the FP32 adder's stages (pipeline.add_stages), so
        the accumulation loop, one add per row and k, can be pipelined that deep."""
        return self.pipeline.add_stages

    def flat(self) -> dict[str, Any]:
        """SECTION_KEY -> value, for generated headers (e.g. VECTOR_VLEN)."""
        out = {}
        for s, kv in self.sections().items():
            for k, v in kv.items():
                if v is not None:
                    out[f"{s}_{k}".upper()] = list(v) if isinstance(v, tuple) else v
        return out

    def describe(self) -> str:
        lines = [f"profile {self.label}: {self.profile.description}",
                 f"  file         {self.path}",
                 f"  config_hash  {self.config_hash}  (register CONFIG_HASH = 0x{self.config_hash32:08x})"]
        for s, kv in self.sections().items():
            for k, v in kv.items():
                if v is None:
                    continue
                if isinstance(v, tuple):
                    v = ", ".join(v)
                lines.append(f"  {s + '.' + k:<26} {v}")
        return "\n".join(lines)


def is_zynq_board(target: str | None, host: str | None) -> bool:
    """Config.zynq_board from a profile's [profile] target and host (None when not given)."""
    return target == "fpga" and (host or FPGA_HOSTS[0]) == "zynq-ps"


def profiles() -> list[str]:
    """Names of the profiles in hw/config/."""
    return sorted(p.stem for p in (hw_dir() / "config").glob("*.toml"))


def _resolve(profile_or_path: str | os.PathLike) -> Path:
    s = os.fspath(profile_or_path)
    p = Path(s)
    if s.endswith(".toml") or os.sep in s or p.is_file():
        if not p.is_file():
            raise ConfigError(f"{s}: no such hardware profile file")
        return p
    p = hw_dir() / "config" / f"{s}.toml"
    if not p.is_file():
        raise ConfigError(f"unknown hardware profile {s!r}: choose one of {profiles()} "
                          f"or give the path of a .toml file")
    return p


def _typed(where: str, typ: type, v: Any) -> Any:
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            raise ConfigError(f"{where}: {v} is too large for a float") from None
    if typ is int and isinstance(v, bool) or not isinstance(v, typ):
        raise ConfigError(f"{where}: expected {typ.__name__}, got {type(v).__name__} {v!r}")
    if typ is list:
        if not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{where}: expected a list of strings, got {v!r}")
        return tuple(v)
    return v


def load(profile_or_path: str | os.PathLike = "sim") -> Config:
    """Load and validate a profile by name (`sim`) or path. Raises ConfigError (a ValueError)
    only, one line naming the file, the key and the accepted range."""
    path = _resolve(profile_or_path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a TOML text file (not UTF-8 at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None

    for s in raw:
        if s not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{s}] (known: {', '.join(SCHEMA)})")
    sections = {}
    for s, keys in SCHEMA.items():
        table = raw.get(s)
        if table is None and not any(req for _, _, req, _ in keys.values()):
            table = {}                   # a section of optional keys only may be left out
        if table is None:
            raise ConfigError(f"{path}: missing section [{s}]")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {s} = {table!r}: must be a section [{s}], not a value")
        for k in table:
            if k not in keys:
                raise ConfigError(f"{path}: [{s}] unknown key {k!r} (known: {', '.join(keys)})")
        values = {}
        for k, (typ, check, required, _doc) in keys.items():
            where = f"{path}: [{s}] {k}"
            if k not in table:
                if required:
                    raise ConfigError(f"{where}: missing")
                values[k] = DEFAULTS.get((s, k))
                continue
            v = _typed(where, typ, table[k])
            if check is not None and (why := check(v)) is not None:
                raise ConfigError(f"{where} = {table[k]!r}: must be {why}")
            values[k] = v
        sections[s] = _SECTION_CLASSES[s](**values)

    cfg = Config(path=str(path), **sections)
    _cross_check(cfg)
    _build_check(cfg)
    return cfg


def _cross_check(cfg: Config) -> None:
    where = cfg.path
    if cfg.vector.lanes > cfg.vector.vlen:
        raise ConfigError(f"{where}: [vector] lanes = {cfg.vector.lanes}: at most vlen = {cfg.vector.vlen} "
                          "(a row is split over the lanes, never the other way round)")
    if cfg.pipeline.max_tree_stages > cfg.vector.vlen.bit_length() - 1:
        raise ConfigError(f"{where}: [pipeline] max_tree_stages = {cfg.pipeline.max_tree_stages}: at most "
                          f"log2(vlen) = {cfg.vector.vlen.bit_length() - 1} (one register after a level of the tree)")
    if cfg.matrix.rows > cfg.vector.vlen:
        raise ConfigError(f"{where}: [matrix] rows = {cfg.matrix.rows}: at most vlen = {cfg.vector.vlen} "
                          "(the unit reads a row of each activation for every weight square)")
    if cfg.matrix.rows and cfg.matrix.rows % cfg.matrix_slots:
        raise ConfigError(f"{where}: [matrix] rows = {cfg.matrix.rows}: must be a multiple of [pipeline] add_stages = "
                          f"{cfg.pipeline.add_stages} (each PE interleaves that many rows, so that its accumulating "
                          "adder can have as many stages)")
    if cfg.profile.target == "fpga" and cfg.profile.part is None:
        raise ConfigError(f"{where}: [profile] part: an fpga profile must name its FPGA part")
    if cfg.profile.host is not None and cfg.profile.target != "fpga":
        raise ConfigError(f"{where}: [profile] host = {cfg.profile.host!r}: only fpga profiles have one "
                          f"(target = {cfg.profile.target!r})")
    if cfg.zynq_board and not cfg.profile.part.startswith(ZYNQ_PART_PREFIXES):
        raise ConfigError(f"{where}: [profile] part = {cfg.profile.part!r}: must be a Zynq part "
                          f"({' or '.join(p + '...' for p in ZYNQ_PART_PREFIXES)}): the board runtime (PYNQ) "
                          f"and the .hwh dnpu.codegen writes need its processing system; host = \"none\" for a "
                          f"build of the NPU alone)")
    if cfg.profile.target != "asic" and cfg.memory.bytes_per_cycle > cfg.beat_bytes:
        raise ConfigError(
            f"{where}: [memory] bytes_per_cycle = {cfg.memory.bytes_per_cycle}: one AXI4 port moves at "
            f"most axi.data_width/8 = {cfg.beat_bytes} bytes a cycle")
    if cfg.profile.name != Path(where).stem and Path(where).parent == hw_dir() / "config":
        raise ConfigError(f"{where}: [profile] name = {cfg.profile.name!r} must match the file name")


# What a profile file must meet beyond SCHEMA's ranges for the RTL to elaborate and the
# compiler to run on it: (section, key, accepted, the range as words, why).
BUILD_RULES: tuple[tuple[str, str, Callable[[Any], bool], str, str], ...] = (
    ("vector", "vlen", lambda v: 8 <= v <= 2048, "a power of two from 8 to 2048",
     "the MX decoder and encoder (hw/rtl/mx) need VLEN >= 8; the matrix unit is built up to 2048"),
    ("ctrl", "loop_depth", lambda v: v >= COMPILER_LOOP_DEPTH, f"an integer from {COMPILER_LOOP_DEPTH} to 16",
     f"the compiler's sampling programs nest {COMPILER_LOOP_DEPTH} hardware loops"),
    ("ctrl", "fetch_words", lambda v: v >= 2, "a power of two from 2 to 256",
     "dnpu_fetch picks a word of a line with log2(fetch_words) >= 1 address bits"),
    ("mx", "formats", lambda v: REQUIRED_MX_FORMAT in v, f"a list of MX formats that includes {REQUIRED_MX_FORMAT!r}",
     "the compiler's weights, logits and KV cache default to it"),
)


def sram_bytes(cfg: Config) -> int:
    """Bytes of the three on-chip SRAMs together (vector rows of VLEN BF16, FP32 and int32 words)."""
    return cfg.sram.vector_rows * cfg.vector.vlen * 2 + 4 * (cfg.sram.fp_words + cfg.sram.int_words)


def _build_check(cfg: Config) -> None:
    for s, k, ok, accepted, why in BUILD_RULES:
        v = getattr(getattr(cfg, s), k)
        if not ok(v):
            shown = list(v) if isinstance(v, tuple) else v
            raise ConfigError(f"{cfg.path}: [{s}] {k} = {shown!r}: must be {accepted} ({why})")
    if (n := sram_bytes(cfg)) > MAX_SRAM_BYTES:
        raise ConfigError(f"{cfg.path}: [sram] vector_rows, fp_words, int_words: the SRAMs hold {n} bytes "
                          f"(vector_rows x vlen x 2 + 4 x (fp_words + int_words)); at most {MAX_SRAM_BYTES} "
                          f"({MAX_SRAM_BYTES >> 20} MiB)")


_HASH_LINE = "// config_hash = "


def _header_hash(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(_HASH_LINE):
                    return line[len(_HASH_LINE):].strip()
    except OSError:
        return None
    return None


def shipped_hash(name: str) -> str | None:
    """The config hash the RTL header of profile `name` (hw/rtl/generated/dnpu_cfg_<name>.vh,
    `-` as `_`) was generated from: under hw_dir(), else in the package's own hw/; None when
    there is no such header."""
    fname = f"dnpu_cfg_{name.replace('-', '_')}.vh"
    if not all(c.isalnum() or c == "_" for c in fname[:-3]):
        return None
    roots = [hw_dir(), resources.data_root() / "hw"]
    for root in roots:
        h = _header_hash(root / "rtl" / "generated" / fname)
        if h is not None:
            return h
    return None
