#!/bin/bash
# Runs a real ImageJ 1.x macro under its own Xvfb through the dialog guard (recipe §7, §13 pitfalls 8, 17, 19).
#   run_ij.sh JAVA CLASSPATH(ij.jar:tests.jar) PLUGINS_DIR HOME_DIR TIMEOUT_S MACRO ARG
# Starts Xvfb on a free display, keeps its PID, always kills it; the JVM gets TIMEOUT_S seconds.
# ImageJ -batch exits 0 even when the macro fails: the caller judges the output (sentinel lines).
set -u
java=$1 cp=$2 plugins=$3 home=$4 limit=$5 macro=$6 arg=${7:-}
mkdir -p "$home"
disp=""
for n in $(seq 90 250); do
  if [ ! -e /tmp/.X11-unix/X$n ] && [ ! -e /tmp/.X$n-lock ]; then disp=$n; break; fi
done
[ -n "$disp" ] || { echo "TEST FAIL: no free X display"; exit 1; }
Xvfb :$disp -screen 0 1280x1024x24 -nolisten tcp >"$home/xvfb-$disp.log" 2>&1 &
xpid=$!
cleanup() { kill "$xpid" 2>/dev/null; wait "$xpid" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 1 50); do [ -e /tmp/.X11-unix/X$disp ] && break; sleep 0.1; done
if ! kill -0 "$xpid" 2>/dev/null; then   # lost a race for the display: try once more
  exec "$0" "$@"
fi
DISPLAY=:$disp timeout --kill-after=10 "$limit" "$java" -Duser.home="$home" -Dplugins.dir="$plugins" \
  -Dferrolens.cacheDir="$home/so-cache" -XX:ErrorFile="$home/hs_err_%p.log" \
  -cp "$cp" ferrolens.test.IJBatchGuard -batch "$macro" "$arg"
rc=$?
echo "run_ij: java exit code $rc"
[ $rc -eq 124 ] && echo "TEST FAIL: ImageJ timed out after ${limit}s (a dialog or a hang)"
exit $rc
