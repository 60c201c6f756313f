#!/bin/sh
# install-deps.sh — installs the Debian 12 packages vigil builds, tests and demos with.
# Idempotent: installs only what is missing; `apt-get update` runs only when something is.
set -eu

PACKAGES="build-essential cmake pkg-config
libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
libluajit-5.1-dev luajit libcurl4-openssl-dev libturbojpeg0-dev libjpeg-turbo-progs
libcjson-dev libmicrohttpd-dev ffmpeg valgrind curl procps
python3 python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-tools
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
gstreamer1.0-plugins-ugly gstreamer1.0-libav faketime python3-numpy
chromium"
# Benchmarks only (`make bench` runs `install-deps.sh --bench`; `make test` never needs them): Motion, the peer
# that tests/bench/run compares with, and perf, its profiler.
BENCH_PACKAGES="motion linux-perf"
if [ "${1:-}" = "--bench" ]; then PACKAGES="$PACKAGES $BENCH_PACKAGES"; fi
# Fuzzing only (`make fuzz` runs `install-deps.sh --fuzz`; `make test` replays the corpora with gcc): clang, its
# libFuzzer and sanitizer runtimes, and llvm-symbolizer for file:line in the reports.
FUZZ_PACKAGES="clang libclang-rt-14-dev llvm"
if [ "${1:-}" = "--fuzz" ]; then PACKAGES="$PACKAGES $FUZZ_PACKAGES"; fi

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "deps: missing packages:$missing; run 'make deps' as root (or install them with apt-get)" >&2
        exit 1
    fi
else
    SUDO=""
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
# The bench starts its own Motion; the package's system service (enabled on install: /dev/video0, ports
# 8080/8081) is not wanted on a build machine.
case " $missing " in *" motion "*)
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now motion >/dev/null 2>&1 || true; fi ;;
esac
