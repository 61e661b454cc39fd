"""``ondaverde flash INTERSECTION on|off``: manual flash of one intersection of the running daemon, by a command
sent to its status endpoint from this machine (the daemon takes commands from the loopback address only)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request

from controller.errors import InputError


def add_flash_command(sub) -> None:
    """Add ``flash`` to the shell's subcommands."""
    p = sub.add_parser(
        "flash", help="manual flash of one intersection of the running daemon (on or off)",
        description="Ask the running daemon (ondaverde run CONFIG.yaml) to put INTERSECTION into manual flash, or "
                    "to take it out. The core times the entry (full yellow and red clearance) and the exit "
                    "(steady all-red into the major phase, after the minimum flash); a fault flash in force "
                    "stays. The command goes to the daemon's status endpoint as POST /flash/ID/on|off; the daemon "
                    "takes it only from this machine.")
    p.add_argument("intersection", help="traffic-light id, as in the daemon's configuration")
    p.add_argument("state", choices=["on", "off"], help="on: flash; off: back to normal operation")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--status", metavar="HOST:PORT", help="the daemon's status endpoint, e.g. 127.0.0.1:18080")
    where.add_argument("--config", metavar="YAML", help="the daemon's configuration file (its status: address)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the daemon (default: 5)")


def cmd_flash(args: argparse.Namespace) -> int:
    """Send the command and print the daemon's answer."""
    if args.config is not None:
        from hw.daemon_config import load_config

        status = load_config(args.config).status
        if status is None:
            raise InputError(f"{args.config}: no status endpoint configured (status: 127.0.0.1:PORT)")
        host, port = status
    else:
        host, _, port = args.status.rpartition(":")
        if not host or not port.isdigit():
            raise InputError(f"--status {args.status!r} is not HOST:PORT")
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{host}:{port}/flash/{urllib.parse.quote(args.intersection, safe='')}/{args.state}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=args.timeout) as answer:
            reply = json.load(answer)
    except urllib.error.HTTPError as exc:
        raise InputError(f"the daemon refused: {exc.read().decode(errors='replace').strip() or exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"no daemon answers at {host}:{port} ({reason})") from None
    print(f"{reply['id']}: manual flash {'on' if reply['manual_flash'] else 'off'}; "
          f"in force: {reply['flash_reason'] or 'none (normal operation after the exit)'}")
    return 0
