#!/usr/bin/env bash
# Installs what mnist-cl needs to build and run on Debian or Ubuntu: a C
# compiler for cgo, the OpenCL headers, the ICD loader and PoCL's CPU device (the device of last resort; a
# GPU's own ICD, if any, works beside it). With the argument "test" it adds
# what the tests run besides: oclgrind (a second, checking OpenCL), chromium
# and a font (the web pages in a real browser), and Python's numpy, onnx and
# OpenCV (the checkpoint reader and the exported model's consumers). It
# installs only what is missing, so `make train` and `make test` call it
# every time.
set -euo pipefail

packages=(opencl-headers ocl-icd-opencl-dev pocl-opencl-icd)
# The test set comes with its recommended packages: headless chromium was
# only ever tried here installed that way.
norec=--no-install-recommends
if [ "${1:-}" = test ]; then
  packages+=(oclgrind chromium fonts-liberation python3-numpy python3-onnx python3-opencv)
  norec=""
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  # Not Debian: check the files and leave the installing to the user.
  if [ -f /usr/include/CL/cl.h ] && ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1; then
    exit 0
  fi
  echo "setup: install the OpenCL headers, an ICD loader (libOpenCL) and a device such as PoCL, then retry" >&2
  exit 1
fi

need=()
# cgo compiles package cl with the system C compiler.
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "setup: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $norec "${need[@]}" >&2
