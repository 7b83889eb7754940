#!/usr/bin/env bash
# Builds and installs a working CRIU (checkpoint/restore of app-mode instances, docs/cold-start.md).
#
# Why: Debian 12's criu 3.17 fails on this machine's kernel (vDSO layout); CRIU 4.x works. We take
# the upstream source tarball that Debian 13 (trixie) ships in its source package, install the build
# dependencies from Debian 12, build only the `criu` binary and install it as /usr/local/sbin/criu.
# Nimbus detects a working criu at run time (`criu check`); without one it starts instances normally.
#
# Usage (root): scripts/install-criu.sh     — idempotent; exits 0 at once when `criu check` passes.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# The marker says this criu carries the socket-option fix below (an older install lacks it).
marker=/usr/local/share/nimbus/criu-sockopt-fix
if command -v criu >/dev/null 2>&1 && criu check >/dev/null 2>&1 && [ -f "$marker" ]; then
  echo "criu: $(criu --version | head -1) already works"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-criu: run as root (it installs packages and /usr/local/sbin/criu)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Debian 13's source packages, for the source only (no binaries are taken from trixie).
cat > /etc/apt/sources.list.d/nimbus-criu-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt-get update -q
apt-get install -y -q --no-install-recommends \
  build-essential pkgconf libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnl-3-dev \
  libnftables-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler \
  uuid-dev python3-protobuf xz-utils

cd "$work"
# The mirror sometimes lags on the .dsc while the upstream tarball is there: the tarball is all we need.
apt-get source --download-only criu/trixie || true
tarball=$(ls criu_*.orig.tar.* 2>/dev/null | head -1)
if [ -z "$tarball" ]; then
  echo "install-criu: could not download criu's source from Debian trixie" >&2
  exit 1
fi
tar xf "$tarball"
cd criu-*/
# Kernel compatibility: since Linux 6.16 getsockopt(SO_PASSCRED/SO_PASSSEC) fails EOPNOTSUPP on
# non-unix sockets, and CRIU 4.1 then refuses to dump any TCP socket (an app's listener):
# "sockets: Can't get 1:16 opt: Operation not supported". Treat the failure as "option off".
sed -i -E 's/ret \|= dump_opt\(sk, SOL_SOCKET, (SO_PASSCRED|SO_PASSSEC), &val\);/if (dump_opt(sk, SOL_SOCKET, \1, \&val)) val = 0;/' criu/sockets.c
grep -q 'SO_PASSCRED, &val)) val = 0' criu/sockets.c || { echo "install-criu: the socket-option fix did not apply" >&2; exit 1; }
make -j"$(nproc)" criu >build.log 2>&1 || { tail -30 build.log >&2; exit 1; }
install -m 0755 criu/criu /usr/local/sbin/criu
hash -r
if ! /usr/local/sbin/criu check; then
  echo "install-criu: criu built but 'criu check' fails on this kernel; Nimbus will not use it" >&2
  exit 1
fi
mkdir -p "$(dirname "$marker")" && touch "$marker"
echo "criu: $(/usr/local/sbin/criu --version | head -1) installed to /usr/local/sbin/criu"
