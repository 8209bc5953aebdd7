#!/usr/bin/env bash
# Installs what mnist-cl needs to build and run on Debian/Ubuntu: the OpenCL
# headers, the ICD loader and PoCL's CPU device. It does nothing when they are
# already there, so `make train` and `make test` can call it every time.
set -euo pipefail

need=()
[ -f /usr/include/CL/cl.h ] || need+=(opencl-headers)
[ -e /usr/lib/x86_64-linux-gnu/libOpenCL.so ] || ldconfig -p 2>/dev/null | grep -q 'libOpenCL\.so ' || need+=(ocl-icd-opencl-dev)
# PoCL is the device of last resort: install it unless some ICD (a GPU driver, say) already names it.
ls /etc/OpenCL/vendors/pocl*.icd >/dev/null 2>&1 || need+=(pocl-opencl-icd)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: missing ${need[*]} and no apt-get here; install an OpenCL ICD loader, headers and a device (PoCL) by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "setup: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
