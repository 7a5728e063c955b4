#!/usr/bin/env bash
# Re-captures the golden frames under protocol/tests/golden/ from real peers (see capture.py).
# Needs: tansu (scripts/install-test-deps), tshark/dumpcap, root (to capture on loopback).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${KBUS_CACHE:-$HOME/.cache/kbus}/pyenv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q confluent-kafka aiokafka lz4 zstandard cramjam
fi
command -v tshark >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark; }
export PATH="${KBUS_CACHE:-$HOME/.cache/kbus}/tansu-0.6.0/bin:$PATH"
out=protocol/tests/golden
rm -rf "$out.new"
"$venv/bin/python" -u scripts/golden/capture.py "$out.new"
rm -rf "$out"
mv "$out.new" "$out"
echo "captured into $out"
