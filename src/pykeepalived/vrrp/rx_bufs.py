"""The receive buffer of a VRRP socket, as keepalived 2.2.7 sizes it (vrrp_rx_bufs_policy, kernel_rx_buf_size).

Every instance on a socket adds its share: its own `kernel_rx_buf_size`, else
global_defs `vrrp_rx_bufs_policy`: a size, or ADVERT (multiplier x the length
of its advert with the IP header), or MTU (multiplier x its interface's MTU);
the multiplier (`vrrp_rx_bufs_multiplier`) defaults to 3. A sum of 0 leaves
the socket as it is (keepalived: the kernel's default; pykeepalived's own
larger default stays). Pure: the shell gives the MTU and applies the sum.
"""

from __future__ import annotations

from ..config.model import GlobalDefs
from .settings import InstanceSettings
from .packet import AuthType

DEFAULT_MULTIPLIER = 3
VRRP_HEADER = 8
AUTH_DATA = 8  # VRRPv2 over IPv4
IPV4_HEADER = 20
AH_HEADER = 24


def advert_length(s: InstanceSettings) -> int:
    """keepalived's vrrp_adv_len: the VRRP packet, plus the IPv4 header (and AH) for IPv4."""
    if s.family == 4:
        length = VRRP_HEADER + (AUTH_DATA if s.version == 2 else 0) + 4 * len(s.vips) + IPV4_HEADER
        return length + (AH_HEADER if s.auth_type is AuthType.AH else 0)
    return VRRP_HEADER + 16 * len(s.vips)


def instance_share(s: InstanceSettings, kernel_rx_buf_size: int | None, g: GlobalDefs, mtu: int | None) -> int:
    """What one instance adds to its socket's receive buffer (bytes)."""
    mult = g.vrrp_rx_bufs_multiplier or DEFAULT_MULTIPLIER
    if kernel_rx_buf_size:
        return kernel_rx_buf_size
    if g.vrrp_rx_bufs_size is not None:
        return g.vrrp_rx_bufs_size
    if g.vrrp_rx_bufs_policy == "ADVERT":
        return mult * advert_length(s)
    if g.vrrp_rx_bufs_policy == "MTU" and mtu:
        return mult * mtu
    return 0
