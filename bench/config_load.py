"""Parse time and peak memory for generated configs of 10 to 10,000 real servers.

Prints one JSON document. Run: .venv/bin/python bench/config_load.py
"""

from __future__ import annotations

import json
import time
import tracemalloc

from pykeepalived.config import read_config_text

SIZES = (10, 100, 1_000, 10_000)
SERVERS_PER_VS = 100


def generate(real_servers: int) -> str:
    parts = ["global_defs {\n  router_id bench\n}\n"]
    for vs in range((real_servers + SERVERS_PER_VS - 1) // SERVERS_PER_VS):
        parts.append(
            f"virtual_server 10.{vs // 256}.{vs % 256}.1 80 {{\n  delay_loop 5\n  lb_algo wrr\n"
            "  lb_kind NAT\n  protocol TCP\n"
        )
        for n in range(min(SERVERS_PER_VS, real_servers - vs * SERVERS_PER_VS)):
            parts.append(
                f"  real_server 172.16.{n // 250}.{n % 250 + 1} 8080 {{\n    weight {n % 10 + 1}\n"
                "    TCP_CHECK {\n      connect_timeout 3\n      retry 2\n    }\n  }\n"
            )
        parts.append("}\n")
    return "".join(parts)


def measure(real_servers: int, repeats: int = 3) -> dict[str, float | int]:
    text = generate(real_servers)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = read_config_text(text)
        best = min(best, time.perf_counter() - start)
    assert not result.errors, result.errors[:3]
    assert sum(len(vs.real_servers) for vs in result.config.virtual_servers) == real_servers
    tracemalloc.start()
    read_config_text(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "real_servers": real_servers,
        "config_lines": text.count("\n"),
        "parse_s": round(best, 4),
        "us_per_real_server": round(best / real_servers * 1e6, 1),
        "peak_mib": round(peak / 2**20, 2),
    }


def main() -> None:
    rows = [measure(n) for n in SIZES]
    ratio = rows[-1]["us_per_real_server"] / rows[1]["us_per_real_server"]
    print(json.dumps({"benchmark": "config_load", "results": rows,
                      "per_server_cost_10000_vs_100": round(float(ratio), 2)}, indent=2))


if __name__ == "__main__":
    main()
