#!/usr/bin/env bash
# Make sure the redis-server and memcached binaries the tests start exist.
# Installs them with apt-get when missing and we are root; never starts a system service
# (the machine may run its own Redis on 6379: tests start private servers on free ports).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v memcached >/dev/null 2>&1 || missing+=(memcached)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "ensure-servers: installing ${missing[*]}"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep the package scripts from starting services on the default ports.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$created_policy" = "1" ]; then rm -f /usr/sbin/policy-rc.d; fi
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "ensure-servers: cannot install ${missing[*]} (no root apt-get); install them yourself." >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
