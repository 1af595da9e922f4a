"""The table model every emitter reads: hw/isa.toml (isa_model), hw/csr.toml (csr_model)
and the hardware profiles (hw/config/*.toml, loaded by dnpu.spec.config), checked against
each other. load_tables(root) loads and validates all of them."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from dnpu.codegen.csr_model import CSR_TOML, Csr, load_csr
from dnpu.codegen.isa_model import ISA_TOML, Isa, load_isa
from dnpu.codegen.validate import CodegenError, Errors
from dnpu.spec import resources

CONFIG_DIR = "hw/config"

__all__ = ["CONFIG_DIR", "CSR_TOML", "ISA_TOML", "CodegenError", "Csr", "Isa", "Profile", "Tables",
           "cross_check", "default_root", "load_csr", "load_isa", "load_profiles", "load_tables"]


def default_root() -> Path:
    """The folder holding hw/, cosim/ and bitstreams/: the repository in a source tree, the
    package's data in an installed wheel (dnpu.spec.resources)."""
    return resources.data_root()


@dataclass(frozen=True)
class Profile:
    name: str
    file: str            # repo-relative path of its TOML
    flat: dict[str, Any]
    config_hash: str
    config_hash32: int


@contextlib.contextmanager
def _hw_dir_env(hw: Path) -> Iterator[None]:
    old = os.environ.get("DNPU_HW_DIR")
    os.environ["DNPU_HW_DIR"] = str(hw)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DNPU_HW_DIR", None)
        else:
            os.environ["DNPU_HW_DIR"] = old


def load_profiles(root: Path) -> list[Profile]:
    """Every profile in <root>/hw/config, loaded by dnpu.spec.config (pointed at root's hw/)."""
    from dnpu.spec import config   # looked up at call time: tests stand a stub in for it

    out = []
    with _hw_dir_env(root / "hw"):
        try:
            for name in config.profiles():
                cfg = config.load(name)
                p = Path(getattr(cfg, "path", "") or root / CONFIG_DIR / f"{name}.toml")
                try:
                    rel = p.resolve().relative_to(root.resolve()).as_posix()
                except ValueError:
                    rel = f"{CONFIG_DIR}/{name}.toml"
                out.append(Profile(name, rel, dict(cfg.flat()), str(cfg.config_hash),
                                   int(cfg.config_hash32)))
        except CodegenError:
            raise
        except Exception as e:  # a ConfigError names its file and key already
            raise CodegenError(f"hardware profile: {e}") from e
    return out


def cross_check(isa: Isa, csr: Csr, profiles: list[Profile] = ()) -> None:
    """Checks that span tables: S_LD_ARG's argi field indexes exactly the ARG registers,
    and every profile's MX formats are ones the ISA can encode."""
    err = Errors()
    ld = next((i for i in isa.instrs if i.name == "S_LD_ARG"), None)
    arg = csr.reg("ARG")
    if ld is None:
        err.add("instr S_LD_ARG", "missing (it reads the ARG registers)", isa.file)
    elif arg is None:
        err.add("reg ARG", "missing (S_LD_ARG reads it)", csr.file)
    elif not any(o.field == "argi" for o in ld.operands):
        err.add("instr S_LD_ARG.operands", "has no operand in field argi", isa.file)
    else:
        w = isa.fields["argi"].width
        if 2 ** w != arg.count:
            err.add("fields.argi", f"width {w} indexes {2 ** w} argument registers, but {csr.file}: "
                                   f"reg ARG has count = {arg.count} (2**width must equal count)", isa.file)
    fmts = isa.enums.get("mxfmt", {})
    for p in profiles:
        v = p.flat.get("MX_FORMATS")
        if isinstance(v, list):
            bad = [x for x in v if x not in fmts]
            if bad:
                err.add("[mx] formats", f"{bad} not in {isa.file} enums.mxfmt ({', '.join(fmts)})", p.file)
    err.raise_if_any()


@dataclass
class Tables:
    """Every source table, validated and checked against the others."""
    isa: Isa
    csr: Csr
    profiles: list[Profile]

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)


def load_tables(root: Path, profiles: list[Profile] | None = None) -> Tables:
    """The tables under root; profiles: use these instead of root's hw/config."""
    isa = load_isa(root)
    csr = load_csr(root)
    if profiles is None:
        profiles = load_profiles(root)
    cross_check(isa, csr, profiles)
    return Tables(isa, csr, profiles)
