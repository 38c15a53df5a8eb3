"""`python -m igsync.simulator`: serve the Graph API simulator on loopback until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import errno
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._app import Simulator
from ._model import demo_accounts
from ._server import serve_in_thread

#: the token the `export` line sets: the simulator accepts any non-empty token
SIM_TOKEN = "sim-token"

_DESCRIPTION = """\
Serve a fake Graph API (account insights and audience, media, stories, media insights)
over HTTP, for trying igsync without Meta.

It serves both of Meta's hosts, each on its own port, and prints their base URLs on stdout:
the first line is the Facebook host (IGSYNC_GRAPH_URL), the second the Instagram host
(IGSYNC_INSTAGRAM_URL). It lists its accounts on stderr and serves until Ctrl-C or SIGTERM.
Any non-empty token is accepted for any listed account, except that each host refuses the
other login's tokens as Meta does (EAA… on the Instagram host, IG… on the Facebook host).
It serves the token endpoints too: oauth/access_token and debug_token on the Facebook host
for the app IG_APP_ID=sim-app-id IG_APP_SECRET=sim-app-secret, refresh_access_token on the
Instagram host.
"""
_EPILOG = """\
example:
  %(prog)s --port 8765 --accounts 2 &
  # paste the `export …` line it prints on stderr, then (any token will do):
  curl "$IGSYNC_GRAPH_URL/v27.0/$IG_ACCOUNT_ID/insights?metric=reach&period=day&access_token=x"
  curl "$IGSYNC_GRAPH_URL/v27.0/$IG_ACCOUNT_ID/media?fields=id,timestamp&access_token=x"
"""


def export_line(
    graph_url: str, instagram_url: str, account_id: str, app_id: str, app_secret: str
) -> str:
    """The shell line that points igsync at the simulator, runnable as printed (pasted into
    bash, sh or zsh): its token is a placeholder the simulator accepts, since it takes any
    non-empty token, and the app is the simulator's own (fake: no Meta app), which token
    refresh, debug_token and batches shared by accounts need."""
    words = [
        f"IGSYNC_GRAPH_URL={graph_url}",
        f"IGSYNC_INSTAGRAM_URL={instagram_url}",
        f"IG_ACCOUNT_ID={account_id}",
        f"IG_LONG_TOKEN={SIM_TOKEN}",
        f"IG_APP_ID={app_id}",
        f"IG_APP_SECRET={app_secret}",
    ]
    return "export " + " ".join(shlex.quote(word) for word in words)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=0,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--accounts",
        type=_count,
        default=3,
        help="how many demo accounts, 1 or more (default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        help="seconds each answer takes from its request, the simulator's own work included;"
        " a batch is one answer (default: %(default)s)",
    )
    parser.add_argument(
        "--require-appsecret-proof",
        action="store_true",
        help="refuse calls that carry an access token without its appsecret_proof (code 100), "
        "like an app with 'Require App Secret' on; igsync sends it keyed by IG_APP_SECRET "
        "(here sim-app-secret) on the Facebook host and by IG_INSTAGRAM_APP_SECRET (here "
        "sim-instagram-app-secret) on the Instagram host",
    )
    return parser


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 0 to 65535")
    return value


def _count(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 or more")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 or more seconds")
    return value


def main(argv: Sequence[str] | None = None, prog: str = "python -m igsync.simulator") -> int:
    """Serve until SIGINT/SIGTERM; `prog` names the command in --help (`igsync simulator`).
    A port it cannot bind is one line on stderr and exit 2."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    accounts = demo_accounts(args.accounts)
    sim = Simulator(
        accounts, latency=args.latency, require_appsecret_proof=args.require_appsecret_proof
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with contextlib.ExitStack() as stack:
        try:
            served = stack.enter_context(serve_in_thread(sim, args.host, args.port))
        except OSError as exc:
            busy = exc.errno == errno.EADDRINUSE
            hint = " (another simulator still running? --port 0 picks a free port)" if busy else ""
            parser.exit(
                2,
                f"{prog}: error: cannot serve on {args.host}:{args.port}:"
                f" {exc.strerror or exc}{hint}\n",
            )
        print(served.graph_url, served.instagram_url, sep="\n", flush=True)
        for account in accounts:
            print(f"account {account.account_id}  zone {account.tz}", file=sys.stderr)
        line = export_line(
            served.graph_url,
            served.instagram_url,
            accounts[0].account_id,
            sim.app_id,
            sim.app_secret,
        )
        print(line, file=sys.stderr, flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
