"""SNMP: an AgentX subagent (RFC 2741) serving KEEPALIVED-MIB and VRRPv3-MIB from the state model.

The codec (agentx.py), the MIB view (mib_*.py, view.py), the request logic
(session.py) and the traps (traps.py) are pure; subagent.py is the asyncio
shell that talks to snmpd's master agent over its unix socket.
"""
