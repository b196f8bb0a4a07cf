"""static_ipaddress, static_routes, static_rules: set when VRRP starts, whatever the instances' states.

keepalived 2.2.7 (vrrp_daemon.c) at start first deletes each static entry (a
leftover of an earlier run; absent is fine), then adds them all, addresses
before routes before rules; they stay through every state change and are
deleted again when the VRRP process stops (rules, routes, then addresses).
Routes and rules carry proto keepalived unless the line says otherwise, as
virtual routes do. A static address without `dev` goes on global_defs'
default_interface, eth0 without one (keepalived 2.2.7's DFLT_INT). An
entry that cannot be set is logged and the rest go on.
When an interface comes up, the static addresses and routes on it (all but
`no_track` ones) are added again, as keepalived's interface_up does (the
kernel drops routes with their interface). `track_group`'s other half, its
members tracking the interfaces of the group's entries, is in track.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from ..config.model import DEFAULT_INTERFACE, KeepalivedConfig
from ..net.addresses import AddressManager, describe_route, describe_rule

log = logging.getLogger("pykeepalived.vrrp")


async def _guard(what: str, step: Awaitable[object]) -> None:
    try:
        await step
    except Exception as exc:  # one entry that cannot be set must not stop VRRP or the others
        log.error("cannot %s: %s", what, exc)


async def remove_statics(addresses: AddressManager, config: KeepalivedConfig) -> None:
    default_if = config.global_defs.default_interface or DEFAULT_INTERFACE
    for rule in config.static_rules:
        await _guard(f"remove static rule {describe_rule(rule)}", addresses.remove_rule(rule))
    for route in config.static_routes:
        await _guard(f"remove static route {describe_route(route)}", addresses.remove_route(route))
    for spec in config.static_ipaddresses:
        await _guard(f"remove static address {spec.address}", addresses.remove_address(spec, default_if))


async def install_statics(addresses: AddressManager, config: KeepalivedConfig) -> None:
    """Clear leftovers, then set every static entry."""
    if not (config.static_ipaddresses or config.static_routes or config.static_rules):
        return
    await remove_statics(addresses, config)
    default_if = config.global_defs.default_interface or DEFAULT_INTERFACE
    for spec in config.static_ipaddresses:
        await _guard(f"add static address {spec.address}", addresses.add_address(spec, default_if))
    for route in config.static_routes:
        await _guard(f"add static route {describe_route(route)}", addresses.add_route(route))
    for rule in config.static_rules:
        await _guard(f"add static rule {describe_rule(rule)}", addresses.add_rule(rule))


async def reinstate_statics(addresses: AddressManager, config: KeepalivedConfig, ifname: str) -> None:
    """An interface came up: its static addresses and routes again (adding what is there is harmless)."""
    default_if = config.global_defs.default_interface or DEFAULT_INTERFACE
    for spec in config.static_ipaddresses:
        if not spec.no_track and (spec.device or default_if) == ifname:
            await _guard(f"add static address {spec.address}", addresses.add_address(spec, default_if))
    for route in config.static_routes:
        if not route.no_track and route.device == ifname:
            await _guard(f"add static route {describe_route(route)}", addresses.add_route(route))
