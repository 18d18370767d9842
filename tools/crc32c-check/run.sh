#!/usr/bin/env bash
# Checks the CRC32C support code (Sources/CRingstoreSupport/crc32c.c) on both
# architectures the project supports, in a few seconds:
#   - natively on x86-64: the SSE4.2 path against the table fallback;
#   - for arm64, cross-compiled with Debian's gcc-aarch64-linux-gnu and run under
#     qemu-aarch64 (package qemu-user), whose default CPU has the ARMv8 CRC
#     extension: that path against the table fallback.
# Each run must find its hardware path (--require-hardware), so that neither
# quietly checks only the table. Needs: a C compiler, gcc-aarch64-linux-gnu, qemu-user.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sources=(tools/crc32c-check/main.c Sources/CRingstoreSupport/crc32c.c)
flags=(-O2 -std=c11 -Wall -Wextra -Werror -ISources/CRingstoreSupport/include)

native=${CC:-cc}
command -v "$native" >/dev/null || native=clang
"$native" "${flags[@]}" "${sources[@]}" -o "$out/crc32c-check-native"
case "$(uname -m)" in
    x86_64 | aarch64) "$out/crc32c-check-native" --require-hardware ;;
    *) "$out/crc32c-check-native" ;;
esac

aarch64-linux-gnu-gcc "${flags[@]}" "${sources[@]}" -o "$out/crc32c-check-arm64"
if [ "$(uname -m)" = aarch64 ]; then
    "$out/crc32c-check-arm64" --require-hardware
else
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/crc32c-check-arm64" --require-hardware
fi
