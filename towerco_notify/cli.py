"""`towerco-notify` command line: run | pipeline | server | simulate | token | check-config |
explain | backtest | revoke | audit.

Every daemon setting is a `NOTIFY_*` variable with a `--flag` twin (see --help).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

from pydantic.fields import FieldInfo

from notify_core.settings import Settings, SettingsError, env_name, flag_name, load_settings
from towerco_notify.commands import admin as admin_cli
from towerco_notify.commands import backtest as backtest_cli
from towerco_notify.commands import explain as explain_cli
from towerco_notify.commands import report as report_cli
from towerco_notify.commands import sites as sites_cli

log = logging.getLogger("towerco_notify")

DAEMON_HELP = {
    "run": "everything in one process; with no NOTIFY_KAFKA_BOOTSTRAP it starts an embedded "
    "broker, with no NOTIFY_REDIS_URL it keeps state in memory (nothing survives a restart)",
    "pipeline": "Faust workers: consume Kafka, store history in Redis, emit through Redis "
    "(scale with partitions)",
    "server": "Socket.IO + HTTP API behind Redis (scale with connections; sticky sessions "
    "for long-polling)",
}


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (flag wins over the NOTIFY_* variable)")
    for name, info in Settings.model_fields.items():
        assert isinstance(info, FieldInfo)
        default = info.default if info.default_factory is None else "[]"
        text = f"{info.description or ''} [{env_name(name)}; default: {default}]"
        if info.annotation is bool:
            group.add_argument(
                flag_name(name),
                dest=name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=text,
            )
        else:
            group.add_argument(flag_name(name), dest=name, default=None, metavar="VALUE", help=text)


def _settings_from(args: argparse.Namespace) -> Settings:
    from towerco_notify.config_files import effective_config_dir

    overrides = {name: getattr(args, name, None) for name in Settings.model_fields}
    settings = load_settings(**overrides)
    config_dir = effective_config_dir(
        settings.config_dir, "config_dir" in settings.model_fields_set
    )
    if config_dir != settings.config_dir:
        return settings.model_copy(update={"config_dir": config_dir})
    return settings


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("towerco-notify")
    except PackageNotFoundError:  # a checkout run without installing
        return "unknown (not installed)"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines (`NOTIFY_LOG_FORMAT=json`)."""

    FIELDS = ("tenant_id", "incident_id", "site_id", "transport")

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        line: dict[str, Any] = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def _setup_logging(level: str, fmt: str = "text") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if fmt == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    if level != "DEBUG":
        for noisy in ("faust", "aiokafka", "mode", "engineio", "socketio", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="towerco-notify",
        description="Real-time NOC notification daemon: Kafka -> Faust -> Socket.IO.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mode, text in DAEMON_HELP.items():
        p = sub.add_parser(mode, help=text.split(";")[0], description=text)
        _add_settings_flags(p)
        if mode == "run":
            p.add_argument(
                "--demo",
                action="store_true",
                help="also generate realistic demo traffic (tenant 'demo')",
            )
            p.add_argument(
                "--demo-rate", type=float, default=5.0, help="demo events per second (default 5)"
            )
    sim = sub.add_parser(
        "simulate",
        help="produce realistic NOC events into Kafka",
        description="Produce KPI series, status flaps and incidents of "
        "every severity to Kafka at a steady rate, with progress.",
    )
    sim.add_argument(
        "--kafka-bootstrap",
        default=os.environ.get("NOTIFY_KAFKA_BOOTSTRAP"),
        help="host:port of Kafka [NOTIFY_KAFKA_BOOTSTRAP] (required)",
    )
    sim.add_argument("--rate", type=float, default=10.0, help="events per second")
    sim.add_argument(
        "--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)"
    )
    sim.add_argument("--tenants", default="demo", help="comma-separated tenant ids")
    sim.add_argument("--sites", type=int, default=12, help="sites per tenant")
    sim.add_argument("--seed", type=int, default=7)
    tok = sub.add_parser(
        "token",
        help="mint a JWT for a tenant/user/roles/sites",
        description="Print an HS256 JWT with the contract's claims.",
    )
    tok.add_argument(
        "--jwt-secret",
        default=os.environ.get("NOTIFY_JWT_SECRET"),
        help="HS256 secret [NOTIFY_JWT_SECRET] (required)",
    )
    tok.add_argument("--tenant", required=True)
    tok.add_argument("--user", default="operator-1")
    tok.add_argument("--roles", default="operator", help="comma-separated: operator, oncall, admin")
    tok.add_argument("--sites", default=None, help="comma-separated site ids (default: all)")
    tok.add_argument("--ttl", type=int, default=12 * 3600, help="seconds until expiry")
    chk = sub.add_parser(
        "check-config",
        help="validate config files offline (exit 1 on error)",
        description="Validate thresholds.yaml (and escalation.yaml when "
        "present); report every error with file, line, rule and field.",
    )
    chk.add_argument(
        "config_dir",
        nargs="?",
        default=os.environ.get("NOTIFY_CONFIG_DIR"),
        help="default: NOTIFY_CONFIG_DIR, else ./config, else the shipped examples",
    )
    explain_cli.add_parser(sub)
    backtest_cli.add_parser(sub)
    admin_cli.add_parsers(sub)
    sites_cli.add_parser(sub)
    report_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in DAEMON_HELP:
            settings = _settings_from(args)
            _setup_logging(settings.log_level, settings.log_format)
            with asyncio.Runner(loop_factory=_loop_factory(settings.uvloop)) as runner:
                return runner.run(_serve(settings, args))
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "token":
            return _token(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "explain":
            return explain_cli.run(args)
        if args.command == "backtest":
            return backtest_cli.run(args)
        if args.command == "revoke":
            return admin_cli.revoke(args)
        if args.command == "audit":
            return admin_cli.audit(args)
        if args.command == "sites":
            return sites_cli.run(args)
        if args.command == "report":
            return report_cli.run(args)
    except SettingsError as exc:
        print(f"towerco-notify: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


def _loop_factory(use_uvloop: bool) -> Any:
    """uvloop when asked for and installed (the socket writes and timers of every
    WebSocket are its hot path), the standard loop otherwise."""
    if use_uvloop:
        try:
            import uvloop

            return uvloop.new_event_loop
        except ImportError:
            log.warning("NOTIFY_UVLOOP is on but uvloop is not installed; using asyncio's loop")
    return None


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _token(args: argparse.Namespace) -> int:
    from sio_server.admission.auth import AuthError, mint_token

    if not args.jwt_secret or len(args.jwt_secret.encode()) < 32:
        print(
            "towerco-notify token: NOTIFY_JWT_SECRET / --jwt-secret must be set, at least 32 bytes",
            file=sys.stderr,
        )
        return 2
    sites = _csv(args.sites) if args.sites is not None else None
    try:
        print(
            mint_token(args.jwt_secret, args.tenant, args.user, _csv(args.roles), sites, args.ttl)
        )
    except AuthError as exc:
        print(f"towerco-notify token: {exc.reason}", file=sys.stderr)
        return 2
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from pathlib import Path

    from towerco_notify.config_files import DEFAULT_CONFIG_DIR, check_dir, effective_config_dir

    explicit = args.config_dir is not None
    config_dir = effective_config_dir(Path(args.config_dir or DEFAULT_CONFIG_DIR), explicit)
    ok, report = check_dir(config_dir)
    print("\n".join(report["ok"]))
    if report["errors"]:
        print("\n".join(report["errors"]), file=sys.stderr)
        n = len(report["errors"])
        print(f"check-config: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
    return 0 if ok else 1


def _simulate(args: argparse.Namespace) -> int:
    from towerco_notify.commands.simulate import Generator, produce

    if not args.kafka_bootstrap:
        print(
            "towerco-notify simulate: --kafka-bootstrap / NOTIFY_KAFKA_BOOTSTRAP required "
            "(`towerco-notify run` prints its broker address)",
            file=sys.stderr,
        )
        return 2
    if args.rate <= 0:
        print("towerco-notify simulate: --rate must be > 0", file=sys.stderr)
        return 2
    gen = Generator(_csv(args.tenants), args.sites, args.seed)
    asyncio.run(produce(args.kafka_bootstrap, gen, args.rate, args.duration))
    return 0


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from notify_core.config_yaml import ConfigInvalid
    from towerco_notify.runtime import ConfigurationError, Runtime

    try:
        runtime = Runtime(settings, mode=args.command)
    except (ConfigurationError, ConfigInvalid) as exc:
        print(f"towerco-notify {args.command}: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: runtime.reload_config("SIGHUP"))
    try:
        await runtime.start()
    except ConfigurationError as exc:  # found while starting (e.g. the Redis version)
        print(f"towerco-notify {args.command}: {exc}", file=sys.stderr)
        return 2
    demo: asyncio.Task[Any] | None = None
    asked_to_stop = False
    try:
        await runtime.wait_ready(90)
        _banner(runtime, args)
        if getattr(args, "demo", False):
            from towerco_notify.commands.simulate import Generator, produce

            gen = Generator(["demo"], 12)
            demo = asyncio.create_task(
                produce(runtime.bootstrap, gen, args.demo_rate, None, progress_every_s=60)
            )
        await stop.wait()
        asked_to_stop = True
        log.info("stopping")
    finally:
        if demo is not None:
            demo.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await demo
        await runtime.stop()
        me = asyncio.current_task()
        stuck = await cancel_leftovers([t for t in asyncio.all_tasks() if t is not me], 5.0)
        if stuck:
            # asyncio.Runner would wait for them forever: a SIGTERM must end the process
            log.warning(
                "%d task(s) ignored cancellation at shutdown (%s); exiting without them",
                len(stuck),
                ", ".join(sorted({t.get_name() for t in stuck}))[:500],
            )
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0 if asked_to_stop else 1)  # a failure on the way stays a failure
    return 0


async def cancel_leftovers(
    tasks: list[asyncio.Task[Any]], timeout_s: float
) -> list[asyncio.Task[Any]]:
    """Cancel what still runs after the orderly stop and wait for it, at most `timeout_s`;
    returns the tasks that did not finish (seen after 10 000 connections were closed at
    once: the Runner's own cancel-and-wait then never returned)."""
    left = [t for t in tasks if not t.done()]
    for task in left:
        task.cancel()
    if not left:
        return []
    _, pending = await asyncio.wait(left, timeout=timeout_s)
    return list(pending)


def _banner(runtime: Any, args: argparse.Namespace) -> None:
    from notify_core.redact import mask_password
    from sio_server.admission.auth import mint_token

    s = runtime.settings
    host = "127.0.0.1" if s.http_host in ("0.0.0.0", "::") else s.http_host
    url = f"http://{host}:{runtime.http_port}"
    lines = [f"towerco-notify {args.command} ready", f"  HTTP + Socket.IO : {url}"]
    if args.command == "run":
        state = f"Redis {mask_password(s.redis_url)}" if s.redis_url else "in memory"
        lines += [
            f"  Kafka bootstrap  : {runtime.bootstrap}"
            + ("  (embedded tansu, memory only)" if runtime.broker else ""),
            f"  state            : {state}"
            + ("" if s.redis_url else " (nothing survives a restart)"),
        ]
        # a demo admin token only for the dev secret `run` made up: with a real secret,
        # printing a 12 h admin token would hand it to whoever reads the logs
        if runtime.generated_secret:
            token = mint_token(
                runtime.jwt_secret, "demo", "demo-operator", ["operator", "oncall", "admin"]
            )
            lines += [
                f"  dashboard        : {url}/#token={token}",
                f"  demo token       : {token}",
                f"  dev JWT secret   : {runtime.jwt_secret}  (random, this run only)",
            ]
        else:
            lines.append(
                f"  dashboard        : {url}/  (sign in with a token: towerco-notify token)"
            )
        lines.append(
            "  send events      : towerco-notify simulate --kafka-bootstrap "
            f"{runtime.bootstrap} --tenants demo"
        )
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
