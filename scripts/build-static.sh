#!/usr/bin/env bash
# Build holdfast as one statically linked executable (glibc static-pie) and print its size.
# Result: target/x86_64-unknown-linux-gnu/release/holdfast
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target x86_64-unknown-linux-gnu
bin=target/x86_64-unknown-linux-gnu/release/holdfast
file "$bin" 2>/dev/null || true
ls -l "$bin" | awk '{print "size: " $5 " bytes"}'
