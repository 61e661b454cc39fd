"""The per-light table of ``ondaverde evaluate --by-light``: each light's share of the time loss per controller."""

from __future__ import annotations

import statistics

from envs.light_delay import ELSEWHERE


def by_light_means(records: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """scenario -> controller -> light -> mean over the seeds of its time loss per scheduled vehicle (seconds).

    :param records: evaluate's records, each with ``delay_by_light``.
    """
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        if r.get("delay_by_light"):
            runs.setdefault((r["scenario"], r["controller"]), []).append(r["delay_by_light"])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (scenario, controller), shares in runs.items():
        lights = list(dict.fromkeys(k for s in shares for k in s))
        out.setdefault(scenario, {})[controller] = {k: statistics.fmean(s.get(k, 0.0) for s in shares) for k in lights}
    return out


def format_by_light(records: list[dict]) -> str:
    """One table per scenario: a line per light (largest share under the first controller first, ``elsewhere``
    and the sum last), a column per controller; ``*`` marks each line's lowest. Below it, with several
    controllers, the sum of the lowest share of each line: what the best controller at each light would give if
    the lights did not affect each other (they do: a bound to read with care, not a result).

    :param records: evaluate's records, each with ``delay_by_light``.
    """
    blocks = []
    for scenario, per_controller in by_light_means(records).items():
        controllers = list(per_controller)
        first = per_controller[controllers[0]]
        lights = sorted((k for k in first if k != ELSEWHERE), key=lambda k: -first[k]) + [ELSEWHERE]
        rows = [(k, [per_controller[c].get(k, 0.0) for c in controllers]) for k in lights]
        rows.append(("sum", [sum(per_controller[c].values()) for c in controllers]))
        header = ["light"] + controllers
        cells = []
        for name, values in rows:
            low = min(values)
            cells.append([name] + [f"{v:.2f}" + ("*" if v == low and len(values) > 1 else " ") for v in values])
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        lines = [f"scenario {scenario}: time loss on each light's approaches, seconds per scheduled vehicle "
                 f"(mean over seeds; * lowest)",
                 "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                  for row in cells]
        if len(controllers) > 1:
            lowest = sum(min(values) for _, values in rows[:-1])
            lines.append(f"lowest of each line, summed: {lowest:.2f} (each light under its best controller, as if "
                         f"the lights did not interact)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
