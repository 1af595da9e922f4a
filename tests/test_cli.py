import struct
import subprocess

from dnpu.spec import isa, mx

from conftest import dnpu_cli


def run(*args, **kw):
    return subprocess.run(dnpu_cli() + list(args), capture_output=True, text=True, **kw)


def test_asm_disasm_round_trip_through_the_cli(tmp_path, repo):
    src = repo / "examples" / "argmax_rows.s"
    binary = tmp_path / "prog.bin"
    r = run("asm", str(src), "-o", str(binary))
    assert r.returncode == 0, r.stderr
    data = binary.read_bytes()
    assert data == isa.assemble(src.read_text())
    assert len(data) // 4 == 16
    r = run("disasm", str(binary), "--bare")
    assert r.returncode == 0, r.stderr
    again = tmp_path / "again.s"
    again.write_text(r.stdout)
    r = run("asm", str(again), "-o", str(tmp_path / "again.bin"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.bin").read_bytes() == data
    # The loop body ends right before the `done:` label: five instructions.
    assert "C_LOOP x3, 5" in (tmp_path / "again.s").read_text()


def test_asm_error_names_file_line_and_column(tmp_path):
    src = tmp_path / "bad.s"
    src.write_text("C_NOP\n  S_ADDI x1, x2, f3\n")
    r = run("asm", str(src))
    assert r.returncode == 2
    assert f"{src}:2:" in r.stderr
    assert "Traceback" not in r.stderr


def test_disasm_unknown_opcode_is_an_error_not_a_guess(tmp_path):
    f = tmp_path / "junk.bin"
    f.write_bytes(struct.pack("<2I", isa.encode("C_NOP"), 0x7F))
    r = run("disasm", str(f))
    assert r.returncode == 2
    assert "0x0000007f" in r.stderr.lower()
    assert "C_NOP" not in r.stdout


def test_isa_mx_format_enum_names_the_codec_formats():
    assert set(isa.MXFMT) == set(mx.FORMATS)
