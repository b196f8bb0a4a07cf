#!/usr/bin/env bash
# The main job: check the Red Hat guide's two NAT routers' keepalived.conf as a
# router with eth0 and eth1 would (inside a network namespace of its own), show the
# model pykeepalived builds from it, then build the guide's NAT topology in
# namespaces (nat_lab_demo.py: client, two routers, three nginx real servers),
# send traffic through the VIP, kill the master and show traffic continuing.
set -euo pipefail
cd "$(dirname "$0")"
ns="pk-main-$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add eth0 type veth peer name eth1
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth1 up
for conf in rhel-nat-lb1.conf rhel-nat-lb2.conf; do
    echo "== pykeepalived -t -f $conf (in namespace $ns with eth0 and eth1)"
    ip netns exec "$ns" pykeepalived -t -f "$conf" 2> >(grep -v 'is parsed but not acted on yet' >&2)
    echo "   verdict: configuration OK"
done
echo "== what the model says about LB1"
ip netns exec "$ns" pykeepalived --dump-config -f rhel-nat-lb1.conf 2>/dev/null | python3 show_model.py
echo
python3 nat_lab_demo.py
