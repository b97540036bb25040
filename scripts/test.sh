#!/usr/bin/env bash
# The whole test suite on a clean clone: Python requirements, Debian's Chromium for the browser test, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -r requirements.txt -r requirements-dev.txt
if [ ! -x /usr/bin/chromium ]; then
    # Playwright's own browser download does not work on these machines; Debian's chromium does.
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
        ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium) \
            || echo "warning: could not install chromium; the browser test will be skipped" >&2
    else
        echo "warning: no apt-get to install chromium; the browser test will be skipped" >&2
    fi
fi
# One torch thread: the tests train tiny models, whose small ops gain nothing from a second thread, and on a
# busy 2-core machine (CI) OpenMP threads that spin-wait for a core cost far more than they save.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
python -m pytest -q "$@"
