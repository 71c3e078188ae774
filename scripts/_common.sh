# Shared by scripts/run and scripts/test: find Python >= 3.12, make .venv, install.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  local c
  for c in "${PORTAL_PYTHON:-}" python3.13 python3.12 python3 \
           "$HOME"/.pyenv/versions/3.13*/bin/python3.13 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 \
           /root/.pyenv/versions/3.13*/bin/python3.13 /root/.pyenv/versions/3.12*/bin/python3.12; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

ensure_venv() {  # $1: pip extras, e.g. "[dev]" or ""
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then
    local py
    if ! py="$(find_python)"; then
      echo "error: Python 3.12 or newer is needed and none was found." >&2
      echo "  Install python3.12 or python3.13 (e.g. 'apt-get install python3.12-venv', 'brew install python@3.13'," >&2
      echo "  or 'pyenv install 3.13'), or point PORTAL_PYTHON at one." >&2
      exit 1
    fi
    echo "==> creating .venv with $py"
    rm -rf .venv
    "$py" -m venv .venv
  fi
  echo "==> installing the portal${1:-} into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${1:-}"
  .venv/bin/python manage.py compile_catalogs
}

redis_up() { .venv/bin/python - "$1" <<'PY'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
}

ensure_redis() {  # start the machine's Redis when installed and down
  local url="redis://127.0.0.1:6379/0"
  redis_up "$url" && return 0
  if command -v redis-server >/dev/null 2>&1; then
    echo "==> starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do redis_up "$url" && return 0; sleep 0.5; done
  fi
  return 1
}

local_postgres_up() { .venv/bin/python - <<'PY'
import sys, psycopg
try:
    psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2).close()
except Exception:
    sys.exit(1)
PY
}

CJK_FONT_FILE=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
ensure_cjk_font() {  # Debian's WenQuanYi font, embedded in invoice PDFs (billing.pdf); returns 1 if missing
  [ -f "$CJK_FONT_FILE" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Debian's WenQuanYi font (embedded in invoice PDFs)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null
  fi
  [ -f "$CJK_FONT_FILE" ]
}
