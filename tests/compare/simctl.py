#!/usr/bin/env python3
"""Timing helper of tests/compare/gammu-smsd.sh: talks to the simulator's control socket
(newline-delimited JSON, docs/simulator.md) and times what the network sees.

  simctl.py SOCK count
      prints how many SMS-SUBMITs the network has accepted so far.
  simctl.py SOCK batch N TIMEOUT -- CMD...
      runs CMD (the step that queues the messages), then polls `submitted` every 10 ms until N
      more SUBMITs than before CMD arrived; prints the seconds from CMD's start to the N-th.
  simctl.py SOCK reply FROM TEXT TIMEOUT
      a phone FROM texts TEXT to modem 0; polls `submitted` every 10 ms until a SUBMIT to FROM
      arrives; prints the seconds from the `sms` command to that SUBMIT.

Times are taken here, on one clock, at 10 ms granularity. Exit status 1 on a timeout.
"""
import json
import socket
import subprocess
import sys
import time


class Sim:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.next_id = 0

    def call(self, cmd, **args):
        self.next_id += 1
        req = dict(id=self.next_id, cmd=cmd, **args)
        self.file.write((json.dumps(req) + "\n").encode())
        self.file.flush()
        resp = json.loads(self.file.readline())
        if not resp.get("ok"):
            raise SystemExit(f"simulator refused {req}: {resp}")
        return resp["data"]

    def submitted(self):
        return self.call("submitted")


def main():
    sim = Sim(sys.argv[1])
    verb = sys.argv[2]
    if verb == "count":
        print(len(sim.submitted()))
    elif verb == "batch":
        n, timeout = int(sys.argv[3]), float(sys.argv[4])
        cmd = sys.argv[sys.argv.index("--") + 1:]
        base = len(sim.submitted())
        t0 = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        queued = time.monotonic() - t0
        while True:
            done = len(sim.submitted()) - base
            if done >= n:
                print(f"{time.monotonic() - t0:.3f} {queued:.3f}")
                return
            if time.monotonic() - t0 > timeout:
                print(f"timeout: {done}/{n} after {timeout} s", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.01)
    elif verb == "reply":
        sender, text, timeout = sys.argv[3], sys.argv[4], float(sys.argv[5])
        base = sum(1 for s in sim.submitted() if s.get("to") == sender)
        t0 = time.monotonic()
        sim.call("sms", **{"from": sender, "modem": 0, "text": text})
        while True:
            if sum(1 for s in sim.submitted() if s.get("to") == sender) > base:
                print(f"{time.monotonic() - t0:.3f}")
                return
            if time.monotonic() - t0 > timeout:
                print(f"timeout: no reply to {sender} after {timeout} s", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.01)
    else:
        raise SystemExit(f"unknown verb {verb}")


if __name__ == "__main__":
    main()
