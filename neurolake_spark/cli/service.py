"""``neurolake serve``, ``neurolake keys`` and ``neurolake audit``: the HTTP service and its access.

    neurolake serve --port 8000 --workers 2
    neurolake keys create --name ci-reader --role viewer --expires-days 90   # the key is the last line
    neurolake keys list
    neurolake keys revoke ci-reader
    neurolake audit list --limit 20

Key operations from the command line are written to the audit log like the API's (actor
``cli:<user>``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal

from neurolake_spark.cli.common import add_environment_options


def register(subparsers: argparse._SubParsersAction) -> None:
    from neurolake_spark.service.keys import GRANTS, ROLES

    serve = subparsers.add_parser(
        "serve",
        help="run the HTTP API (catalog, lineage, runs, quality, audit) on the environment's catalog",
        description="Serve the NeuroLake HTTP API with uvicorn. Bind, workers, auth, limits and tracing "
        "come from the service section of the settings; --host/--port/--workers override it.",
    )
    add_environment_options(serve)
    serve.add_argument("--host", help="address to bind (default service.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default service.port, 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=int, help="worker processes (default service.workers, 1)")
    serve.set_defaults(handler=_serve)

    keys = subparsers.add_parser("keys", help="API keys of the service: create, list, revoke")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    create = key_commands.add_parser("create", help="create a key; prints it once, as the last line")
    create.add_argument("--name", required=True, help="who or what uses the key, e.g. ci-reader")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--tenant", help="the key's tenant (default: the first of service.tenants)")
    create.add_argument("--expires-days", type=float, metavar="N", help="the key stops working after N days")
    create.add_argument(
        "--grant",
        action="append",
        default=[],
        choices=GRANTS,
        help="a grant beside the role (pii: see PII columns unmasked); repeat for several",
    )
    create.set_defaults(handler=_create)
    listing = key_commands.add_parser("list", help="every key: id, name, role, tenant, state, last use")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(handler=_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key", metavar="KEY_ID_OR_NAME")
    revoke.set_defaults(handler=_revoke)
    for command in (create, listing, revoke):
        add_environment_options(command)

    audit = subparsers.add_parser("audit", help="the service's audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    audit_list = audit_commands.add_parser("list", help="audit records, newest first")
    add_environment_options(audit_list)
    audit_list.add_argument("--action", help="only this action, e.g. key.create, tag.add, auth.failure")
    audit_list.add_argument("--actor", help="only this actor")
    audit_list.add_argument("--tenant", help="only this tenant")
    audit_list.add_argument("--limit", type=int, default=50)
    audit_list.add_argument("--format", choices=("text", "json"), default="text")
    audit_list.set_defaults(handler=_audit)


def _settings(args: argparse.Namespace):
    from neurolake_spark.config import load_settings

    return load_settings(args.conf_file, args.overrides)


def _store(settings):
    from neurolake_spark.catalog.store import CatalogStore

    return CatalogStore.from_settings(settings)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _record(store, action: str, target: str, **parameters) -> None:
    from neurolake_spark.service.audit import AuditLog

    AuditLog(store).record(action, _actor(), target=target, parameters=parameters, client="cli")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from neurolake_spark.service.app import SETTINGS_ENV, app_from_environment

    overrides = list(args.overrides)
    for name in ("host", "port", "workers"):
        if getattr(args, name) is not None:
            overrides.append(f"service.{name}={getattr(args, name)}")
    os.environ[SETTINGS_ENV] = json.dumps({"conf_file": args.conf_file, "overrides": overrides})
    settings = _settings(argparse.Namespace(conf_file=args.conf_file, overrides=overrides))
    service = settings.service
    # Built here even for several workers, so a wrong setting is one line, not each worker's traceback.
    app = app_from_environment()
    options = {
        "host": service.host,
        "port": service.port,
        "workers": service.workers,
        "server_header": False,
        "access_log": False,
        "log_config": None,
        "timeout_graceful_shutdown": service.shutdown_grace_seconds,
        "proxy_headers": bool(service.trusted_proxies),
        "forwarded_allow_ips": ",".join(service.trusted_proxies) or None,
    }
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: end with status 0 then.
    signal.signal(signal.SIGTERM, _stopped)
    if service.workers > 1:
        uvicorn.run("neurolake_spark.service.app:app_from_environment", factory=True, **options)
    else:
        uvicorn.run(app, **options)
    return 0


def _stopped(signum, frame) -> None:
    raise SystemExit(0)


def _create(args: argparse.Namespace) -> int:
    from neurolake_spark.service.keys import KeyStore

    settings = _settings(args)
    store = _store(settings)
    key, token = KeyStore(store, settings.service.tenants).create(
        args.name, args.role, args.tenant, args.expires_days, created_by=_actor(), grants=args.grant
    )
    _record(
        store, "key.create", key.key_id, name=key.name, role=key.role, tenant=key.tenant, grants=key.grants
    )
    expiry = f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else ""
    print(f"created key {key.key_id} '{key.name}' (role {key.role}, tenant {key.tenant}{expiry})")
    print("store it now: it is shown only once")
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    from neurolake_spark.catalog.words import format_time
    from neurolake_spark.cli.display import text_table, to_json
    from neurolake_spark.service.keys import KeyStore

    settings = _settings(args)
    keys = KeyStore(_store(settings), settings.service.tenants).list()
    if args.format == "json":
        print(to_json([k.to_dict() for k in keys]))
        return 0
    if not keys:
        print("no keys yet: neurolake keys create --name NAME --role viewer")
        return 0
    rows = [
        [
            k.key_id,
            k.name,
            k.role,
            k.tenant,
            "active" if k.active else ("revoked" if k.revoked_at else "expired"),
            format_time(k.created_at),
            format_time(k.expires_at) or "never",
            format_time(k.last_used_at) or "never",
        ]
        for k in keys
    ]
    print(text_table(["key id", "name", "role", "tenant", "state", "created", "expires", "last used"], rows))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from neurolake_spark.service.keys import KeyStore

    settings = _settings(args)
    store = _store(settings)
    key = KeyStore(store, settings.service.tenants).revoke(args.key)
    _record(store, "key.revoke", key.key_id, name=key.name)
    print(f"revoked key {key.key_id} '{key.name}'")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from neurolake_spark.catalog.words import format_time
    from neurolake_spark.cli.display import text_table, to_json
    from neurolake_spark.service.audit import AuditLog

    records = AuditLog(_store(_settings(args))).list(
        tenant=args.tenant, action=args.action, actor=args.actor, max_results=max(1, args.limit)
    )
    if args.format == "json":
        print(to_json([r.to_dict() for r in records]))
        return 0
    if not records:
        print("no audit records")
        return 0
    rows = [
        [
            format_time(r.recorded_at),
            r.action,
            r.actor,
            r.tenant or "",
            f"{r.method or ''} {r.route or ''}".strip(),
            r.target or "",
            r.status if r.status is not None else "",
            r.client or "",
        ]
        for r in records
    ]
    print(text_table(["time", "action", "actor", "tenant", "request", "target", "status", "client"], rows))
    return 0
