# What `fwd ip to SERVER device <ipip>` from a netdev ingress chain does (docs/dataplane.md, "TUN from the
# ingress hook"): one router, one real server, a client, `ping`. Not a test (its output is read by a human):
#   python -m tests.vm.guest -- "$(cat tests/vm/fwd_ipip_probe.sh)"
# Seen on Debian's kernel: the real server's tunl0 takes the small pings byte for byte (its replies, from the
# VIP, do not come back in this bare set-up; the lab test shows the replies); a 1500-byte ping
# gets nothing back, with DF or without; with too-long packets accepted on to a prerouting `dup`, the client
# gets "Frag needed and DF set (mtu = 1480)".
set -x
modprobe ipip || exit 3
uname -r
for n in c r s; do ip netns add $n; ip -n $n link set lo up; done
ip link add cr netns c type veth peer name rc netns r
ip link add rs netns r type veth peer name sr netns s
ip -n c addr add 10.0.1.2/24 dev cr; ip -n c link set cr up; ip -n c route add default via 10.0.1.1
ip -n r addr add 10.0.1.1/24 dev rc; ip -n r link set rc up
ip -n r addr add 10.0.2.1/24 dev rs; ip -n r link set rs up
ip -n r addr add 10.0.9.1/32 dev lo
ip netns exec r sysctl -qw net.ipv4.ip_forward=1
ip -n s addr add 10.0.2.2/24 dev sr; ip -n s link set sr up; ip -n s route add default via 10.0.2.1
ip -n s link set tunl0 up; ip -n s addr add 10.0.9.1/32 dev tunl0
for k in all.rp_filter default.rp_filter tunl0.rp_filter sr.rp_filter; do ip netns exec s sysctl -qw net.ipv4.conf.$k=0; done
ip -n r link add pkt0a000202 type ipip remote 10.0.2.2; ip -n r link set pkt0a000202 up
ip -n r link show pkt0a000202
ip netns exec c ping -c1 -W2 10.0.2.2 >/dev/null && echo ROUTED_OK
ip netns exec r nft -f - <<'NFT'
table netdev t {
  chain in { type filter hook ingress device rc priority 0; policy accept;
    pkttype host ip daddr 10.0.9.1 counter fwd ip to 10.0.2.2 device pkt0a000202
  }
}
NFT
ip netns exec c ping -c3 -W2 10.0.9.1; echo "small ping rc=$?"
ip netns exec r nft list ruleset
ip -n s -s link show tunl0
ip netns exec c ping -c2 -W2 -M do -s 1472 10.0.9.1; echo "big DF ping rc=$?"
ip netns exec c ip route get 10.0.9.1
ip -n s -s link show tunl0
ip netns exec c ping -c2 -W2 -M dont -s 1472 10.0.9.1; echo "big nonDF ping rc=$?"
# divert oversize to the IP stack; copy path there
ip netns exec r nft -f - <<'NFT'
flush table netdev t
table netdev t {
  chain in { type filter hook ingress device rc priority 0; policy accept;
    pkttype host ip daddr 10.0.9.1 meta length > 1480 counter accept
    pkttype host ip daddr 10.0.9.1 counter fwd ip to 10.0.2.2 device pkt0a000202
  }
}
table ip d {
  chain pre { type filter hook prerouting priority -149; policy accept;
    ip daddr 10.0.9.1 counter dup to 10.0.2.2 device pkt0a000202 drop
  }
}
NFT
ip netns exec c ip route flush cache
ip netns exec c ping -c2 -W2 -M do -s 1472 10.0.9.1; echo "big DF ping diverted rc=$?"
ip netns exec c ip route get 10.0.9.1
ip netns exec c ping -c2 -W2 -M do -s 1452 10.0.9.1; echo "1480 DF ping rc=$?"
ip netns exec c ping -c2 -W2 -M dont -s 1472 10.0.9.1; echo "big nonDF ping diverted rc=$?"
ip netns exec r nft list ruleset
ip -n s -s link show tunl0
