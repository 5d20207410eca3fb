#!/usr/bin/env bash
# Installs what the telco examples and every test tier need on a Debian 12 (bookworm) machine.
# Run as root. It is idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
    # VM tier guest: kernel, initramfs tools and peer tools packed into it
    linux-image-amd64 busybox-static kmod cpio lksctp-tools iproute2 ethtool
    # host tier peers
    containernetworking-plugins dpdk dpdk-dev podman runc hwloc
    # build dependencies (the hwloc feature of telco-topo links libhwloc)
    libhwloc-dev pkg-config bzip2
)
# QEMU 8.0 or later is needed for the emulated igb NIC (SR-IOV); bookworm has 7.2, its
# backports suite has 10.0.
backports_packages=(qemu-system-x86 seabios)

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh must run as root (it installs Debian packages)" >&2
    exit 1
fi

missing() {
    local name
    for name in "$@"; do
        dpkg-query -W -f='${Status}\n' "$name" 2>/dev/null | grep -q '^install ok installed$' || echo "$name"
    done
}

qemu_has_igb() {
    command -v qemu-system-x86_64 >/dev/null &&
        qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"'
}

need=$(missing "${packages[@]}")
need_backports=""
qemu_has_igb || need_backports="${backports_packages[*]}"

if [ -z "$need" ] && [ -z "$need_backports" ]; then
    echo "setup: all packages present"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if [ -n "$need_backports" ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" = bookworm ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    fi
fi

apt-get update -qq
if [ -n "$need" ]; then
    echo "setup: installing $need" | tr '\n' ' '; echo
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
if [ -n "$need_backports" ]; then
    echo "setup: installing $need_backports from bookworm-backports"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends -t bookworm-backports $need_backports >/dev/null
fi
qemu_has_igb || { echo "setup: qemu-system-x86_64 has no igb device (QEMU 8.0 or later needed)" >&2; exit 1; }
echo "setup: done"
