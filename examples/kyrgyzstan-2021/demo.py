"""`make demo`: election night in Kyrgyzstan, 28 November 2021, replayed live in two minutes.

What it does, in a fresh `demo/` folder at the top of the repository:

1. generates the synthetic Kyrgyzstan 2021 election (2,494 stations; the hand count equals the
   official national result) and creates its store (SQLite), one device key per station and
   API tokens for commission staff;
2. starts `tallyroom serve --publish-dir demo/site` on http://127.0.0.1:8000 — open it: the
   site shows stations coming in as they report, a new snapshot every two seconds;
3. replays the night: every station's scanner (machine) count first, then the hand count,
   signed by the station's device, with light faults (duplicates, forged signatures, broken
   bodies, a few conflicts, corrections and annulments of scanner results decided by two
   people) — see `tallyroom simulate` and docs/simulate.md;
4. runs the simulator's final check (every number equals the truth, every receipt is in the
   ledger, nothing forged counted, `tallyroom verify` passes) and then checks the national
   hand count against the official 2021 figures and the seats 15/12/9/7/6/5;
5. keeps serving the site until Ctrl-C (set TALLYROOM_DEMO_EXIT=1, or pass --exit, to stop
   after the checks instead).

    python examples/kyrgyzstan-2021/demo.py [--dir DIR] [--port 8000] [--duration 120] [--exit]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.simulate.faults import LIGHT_RATES
from tallyroom.simulate.kyrgyzstan_data import PARTIES, STATIONS, TOOK_PART, WINNER_VOTES
from tallyroom.simulate.run import SimulationConfig, SimulationResult, describe_result, simulate

REPO = Path(__file__).resolve().parents[2]
SEATS_2021 = [15, 12, 9, 7, 6, 5]


def tallyroom(*args: str, capture: bool = False) -> str:
    """Run the `tallyroom` command line (the installed script beside this Python if any)."""
    script = Path(sys.executable).with_name("tallyroom")
    cmd = (
        [str(script)] if script.exists() else [sys.executable, "-c", "from tallyroom.cli import main; main()"]
    )
    done = subprocess.run([*cmd, *args], check=False, text=True, stdout=subprocess.PIPE if capture else None)
    if done.returncode != 0:
        sys.exit(f"demo: `tallyroom {' '.join(args)}` failed with exit code {done.returncode}")
    return done.stdout or ""


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def check_official(db: Path) -> bool:
    """The demo's own checks: the national hand count and the seats are the official ones."""
    for kind in ("machine", "hand"):
        print()
        tallyroom("--db", str(db), "results", "--contest", kg.PARTY_LIST, "--count-kind", kind)
    result = json.loads(
        tallyroom(
            "--db",
            str(db),
            "results",
            "--contest",
            kg.PARTY_LIST,
            "--count-kind",
            "hand",
            "--format",
            "json",
            capture=True,
        )
    )
    votes = {c["id"]: c["votes"] for c in result["choices"]}
    wrong = {p: (votes.get(p), v) for p, v in WINNER_VOTES.items() if votes.get(p) != v}
    took_part = result.get("took_part")
    print()
    if wrong or (took_part is not None and took_part != TOOK_PART):
        print(f"MISMATCH with the official 2021 result: {wrong}, took part {took_part}")
        return False
    names = {p.id: p.en for p in PARTIES}
    print(
        f"the hand count equals the official 2021 result: {TOOK_PART:,} voters took part; "
        + ", ".join(f"{names[p]} {v:,}" for p, v in WINNER_VOTES.items())
    )
    seats = json.loads(
        tallyroom("--db", str(db), "seats", "--contest", kg.PARTY_LIST, "--format", "json", capture=True)
    )
    won = {name: n for name, n in seats["seats"].items() if n}
    print(
        f"list seats ({'official' if seats['official'] else 'provisional'}, Hare, 5% nationally and "
        "0.5% in every region of voters who took part): "
        + ", ".join(f"{name} {n}" for name, n in sorted(won.items(), key=lambda kv: -kv[1]))
    )
    if sorted(won.values(), reverse=True) != SEATS_2021:
        print("MISMATCH with the official 2021 seats 15/12/9/7/6/5")
        return False
    return True


def serve_until_interrupted(result: SimulationResult) -> None:
    server = result.server
    if server is None:
        return
    print()
    print(f"still serving {result.url}/ (the site) and {result.url}/api/v1/ (the API); Ctrl-C to stop")
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop["now"] and server.proc is not None and server.proc.poll() is None:
        time.sleep(0.2)
    print("\nstopping the server …")
    server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=REPO / "demo", help="work folder (recreated)")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("TALLYROOM_DEMO_PORT", "8000")))
    parser.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("TALLYROOM_DEMO_DURATION", "120")),
        help="seconds over which the night is replayed (default 120)",
    )
    parser.add_argument(
        "--exit",
        action="store_true",
        default=os.environ.get("TALLYROOM_DEMO_EXIT") == "1",
        help="exit after the checks instead of serving until Ctrl-C (TALLYROOM_DEMO_EXIT=1)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()

    folder: Path = args.dir.resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    port = args.port
    if not port_free(args.host, port):
        with socket.socket() as s:
            s.bind((args.host, 0))
            port = int(s.getsockname()[1])
        print(f"port {args.port} is taken; using {port} instead")

    def serving(url: str) -> None:
        print()
        print(f"    the site is live: {url}/    (stations appear as they report)")
        print()

    config = SimulationConfig(
        stations=STATIONS,
        seed=args.seed,
        rates=LIGHT_RATES,
        duration=args.duration,
        db=str(folder / "tallyroom.db"),
        publish_dir=folder / "site",
        publish_every=2.0,
        work=folder,
        host=args.host,
        port=port,
        corrections=5,
        annulments=5,
        annul_kinds=("machine",),  # the hand count stays the official result
        photo_rate=0.1,
        on_serving=serving,
        keep_serving=not args.exit,
        wait_first_snapshot=True,
        progress_every=10.0,
    )
    print(f"replaying election night in Kyrgyzstan, 28 November 2021, in {args.duration:g} s, in {folder}")
    try:
        result = asyncio.run(simulate(config))
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    for line in describe_result(result):
        print(line)
    print(result.summary)
    official = check_official(Path(result.db))
    ok = result.ok and official
    print()
    print(
        f"demo {'finished' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s; "
        f"the store is {result.db}, the published site {result.publish_dir}"
    )
    # The key is not beside the store under the name `tallyroom` looks for by default.
    print(
        f"to publish from the store yourself: TALLYROOM_COMMISSION_KEY={result.work / 'commission.key'} "
        f"tallyroom --db {result.db} publish --out DIR"
    )
    if not args.exit:
        serve_until_interrupted(result)
    elif result.server is not None:
        result.server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
