#!/bin/sh
# Issue 18 experiment (not part of the data plane): can a netdev ingress chain send a stateless NAT reply to a
# client BEHIND A GATEWAY, the next hop and device taken from interval maps (a flattened copy of the route),
# with the router's IP forwarding off? Three namespaces: S (real server 10.11.12.21), R (router), G (gateway
# 192.0.2.1 holding the client 198.18.0.5). S opens a TCP connection from port 8080; G must see its SYN from
# 203.0.113.20:80 with the TTL decremented. Needs root; removes what it makes.
set -eu
P=slrnh$$
R=$P-r S=$P-s G=$P-g
cleanup() { for n in $R $S $G; do ip netns del "$n" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for n in $R $S $G; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n $R link add d0 type veth peer name p0 netns $G
ip -n $R link add d1 type veth peer name p1 netns $S
ip -n $R addr add 192.0.2.2/24 dev d0; ip -n $R addr add 10.11.12.8/24 dev d1
ip -n $R link set d0 up; ip -n $R link set d1 up
ip -n $S addr add 10.11.12.21/24 dev p1; ip -n $S link set p1 up; ip -n $S route add default via 10.11.12.8
ip -n $G addr add 192.0.2.1/24 dev p0; ip -n $G link set p0 up; ip -n $G addr add 198.18.0.5/32 dev lo
ip netns exec $R sysctl -qw net.ipv4.ip_forward=0
# nftables interval maps refuse overlapping prefixes: a route table must be flattened into disjoint ranges
ip netns exec $R nft -f - <<'NFT'
table netdev slreply_proto {
  map nh_addr { type ipv4_addr : ipv4_addr; flags interval;
    elements = { 0.0.0.0-10.11.11.255 : 192.0.2.1, 10.11.13.0-255.255.255.255 : 192.0.2.1 } }
  map nh_dev { type ipv4_addr : iface_index; flags interval;
    elements = { 0.0.0.0-10.11.11.255 : "d0", 10.11.13.0-255.255.255.255 : "d0" } }
  map replies { type ipv4_addr . inet_proto . inet_service : verdict;
    elements = { 10.11.12.21 . tcp . 8080 : goto back_vip20 } }
  chain back_vip20 {
    counter ip saddr set 203.0.113.20 th sport set 80 fwd ip to ip daddr map @nh_addr device ip daddr map @nh_dev
  }
  chain in_d1 {
    type filter hook ingress device "d1" priority -10; policy accept;
    ip frag-off & 0x3fff != 0 accept
    fib daddr type local accept
    ip saddr . meta l4proto . th sport vmap @replies
  }
}
NFT
out=$(mktemp)
ip netns exec $G timeout 6 tcpdump -c 1 -nn -v -i p0 tcp >"$out" 2>&1 &
dump=$!
sleep 1
ip netns exec $S timeout 3 python3 -c "
import socket; s = socket.socket(); s.bind(('10.11.12.21', 8080)); s.settimeout(1)
try: s.connect(('198.18.0.5', 9))
except OSError: pass" || true
wait $dump || true
cat "$out"; rm -f "$out"
ip netns exec $R nft list chain netdev slreply_proto back_vip20 | grep counter
