#!/bin/sh
# deps.sh -- installs the Debian packages octav needs for a make target.
#   scripts/deps.sh build     compiler, cmake, pkg-config, cJSON, zlib, BLIS, oneDNN
#                             (with ocl-icd-opencl-dev: Debian's oneDNN CMake config
#                             requires OpenCL, which it only recommends),
#                             Fashion-MNIST (the default training data) and the
#                             12 Debian word lists (the text corpus, --data langid),
#                             python3 (the test of the study's scripts)
#   scripts/deps.sh fixtures  + python3-numpy, python3-torch (regenerating test fixtures)
#   scripts/deps.sh bench     + python3-numpy, python3-torch, gnuplot-nox (peers, plot)
#   scripts/deps.sh results   + gnuplot-nox (figures of docs/RESULTS.md)
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu
want="gcc make cmake pkg-config libcjson-dev zlib1g-dev libblis-openmp-dev libdnnl-dev ocl-icd-opencl-dev dataset-fashion-mnist"
want="$want wamerican wfrench wngerman witalian wspanish wportuguese wdutch wswedish wpolish wdanish wnorwegian wcatalan python3"
case "${1:-build}" in
  build) ;;
  fixtures) want="$want python3-numpy python3-torch" ;;
  bench) want="$want python3-numpy python3-torch gnuplot-nox" ;;
  results) want="$want gnuplot-nox" ;;
  *) echo "usage: $0 [build|fixtures|bench|results]" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "octav: installing missing packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >&2
else
  echo "octav: missing packages:$missing" >&2
  echo "install them with:  sudo apt-get install$missing" >&2
  exit 1
fi
