#!/usr/bin/env bash
# Installs what dnpu needs on a fresh Debian machine; a second run installs nothing.
# System packages come from apt, Python packages into ./.venv with exact pins.
set -euo pipefail
cd "$(dirname "$0")/.."

# tcl: tests/test_vivado_tcl.py runs the generated Vivado build scripts in tclsh.
APT_PKGS=(iverilog g++ make perl ccache liblz4-dev zlib1g-dev tcl)
VENV=${VENV:-.venv}
STAMP="$VENV/.dnpu-setup"

missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: apt installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The stamp records what the venv was built from; a changed pyproject.toml reinstalls.
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
echo "setup: installing Python packages into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'
echo "$want" > "$STAMP"
echo "setup: done"
