#!/bin/sh
# Install the Debian packages whose commands are missing, in one apt-get call.
#   deploy/apt-need.sh COMMAND:PACKAGE ...
# A command counts as present when it is on PATH or in /usr/sbin or /sbin (nginx lives
# there and a non-root PATH lacks it). As root the missing packages are installed;
# otherwise the script names them and fails, so nothing is silently skipped.
set -eu
missing=""
for pair in "$@"; do
  command=${pair%%:*}
  package=${pair#*:}
  if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$command" >/dev/null 2>&1; then
    case " $missing " in *" $package "*) ;; *) missing="$missing $package" ;; esac
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages:$missing; install them with: sudo apt-get install$missing" >&2
  exit 1
fi
echo "installing Debian packages:$missing"
apt-get update -qq
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
