#!/bin/bash
# Five consecutive `iotmesh experiment failover --quick` runs (issue 14's "done when"), each in a private network namespace.
cd "$(dirname "$0")/../../.." # the checkout
for i in 1 2 3 4 5; do
  rm -rf /tmp/failover-five/run$i
  before=$(cut -d' ' -f1-3 /proc/loadavg)
  start=$(date +%s)
  nice -n 10 unshare -rn sh -c "ip link set lo up; node bin/iotmesh.js experiment failover --quick --out /tmp/failover-five/run$i" > /tmp/failover-five/run$i.log 2>&1
  rc=$?
  echo "run $i rc=$rc $(( $(date +%s) - start )) s start $(date -u -d @$start +%H:%M:%S) load before $before after $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/failover-five/summary
done
echo done >> /tmp/failover-five/summary
