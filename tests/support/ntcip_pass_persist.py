"""An snmpd ``pass_persist`` backend serving NTCIP objects from a JSON file, so net-snmp's ``snmpd`` acts as an
independent NTCIP agent in tests (stdlib only; snmpd runs it as its own child).

Usage (from snmpd.conf): ``pass_persist .1.3.6.1.4.1.1206.4.2 PYTHON THIS_FILE STATE.json``; the JSON maps dotted OIDs
to ``[value, writable]``. Integers only (type ``integer``, or ``counter`` for globalTime).
"""

import json
import sys

COUNTERS = {".1.3.6.1.4.1.1206.4.2.6.3.1.0"}


def key(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.strip(".").split("."))


def main() -> None:
    with open(sys.argv[1]) as f:
        store = {"." + k.strip("."): v for k, v in json.load(f).items()}
    order = sorted(store, key=key)
    out = sys.stdout

    def answer(oid: str) -> None:
        value, _ = store[oid]
        out.write(f"{oid}\n{'counter' if oid in COUNTERS else 'integer'}\n{int(value)}\n")

    while True:
        line = sys.stdin.readline()
        if not line:  # snmpd closed the pipe
            return
        cmd = line.strip()
        if cmd == "":  # snmpd sends an empty line after each SET value: not the end
            continue
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = "." + sys.stdin.readline().strip().strip(".")
            if cmd == "get":
                answer(oid) if oid in store else out.write("NONE\n")
            else:
                later = [o for o in order if key(o) > key(oid)]
                answer(later[0]) if later else out.write("NONE\n")
        elif cmd == "set":
            oid = "." + sys.stdin.readline().strip().strip(".")
            kind, _, text = sys.stdin.readline().strip().partition(" ")
            if oid not in store or not store[oid][1]:
                out.write("not-writable\n")
            elif kind != "integer":
                out.write("wrong-type\n")
            elif not 0 <= int(text) <= 255:
                out.write("wrong-value\n")
            else:
                store[oid][0] = int(text)
                out.write("DONE\n")
        else:
            out.write("NONE\n")
        out.flush()


if __name__ == "__main__":
    main()
