"""The `pars-ws` command line."""

from __future__ import annotations

import json
import os
import secrets
import sys

import click

from .. import logs
from ..settings import Settings
from .worker import POLL_SECONDS


def _services():
    from ..service.container import Services

    return Services()


@click.group()
@click.version_option(package_name="pars-ws")
def main() -> None:
    """pars-ws: a self-hostable mirror of ACCME's PARS learner-reporting web services."""


# -- database ---------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations to PARS_DATABASE_URL (default: SQLite in the data folder)."""
    from ..adapters.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {_safe_url(settings.database_url)} is at {revision}")


@db.command("prepare", hidden=True)
@click.option("--seed", is_flag=True, help="Seed the sandbox when the database has no credentials yet.")
def db_prepare(seed: bool) -> None:
    """What `serve` does first, in a process of its own: migrate and, on first start, seed."""
    from ..adapters.migrate import upgrade
    from ..service.accounts import has_credentials, has_web_users
    from ..service.sandbox import seed_sandbox

    settings = Settings.from_env()
    upgrade(settings.database_url)
    if seed:
        services = _services()
        if not has_credentials(services):
            _print_seed(seed_sandbox(services))
        elif not has_web_users(services):  # a database from before web users: nobody can log in to the pages
            click.echo(
                "no web users yet: add one for the pages with 'pars-ws users add --provider-id N "
                "--environment sandbox|production --name NAME --email EMAIL'"
            )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- sandbox ----------------------------------------------------------------------------------


@main.group()
def sandbox() -> None:
    """The sandbox environment."""


@sandbox.command("seed")
@click.option("--username", help="Credential user name (default: generated).")
@click.option("--password", help="Credential password (default: generated; printed once).")
@click.option(
    "--web-password", help="The sandbox web user's password for the pages (default: generated; printed once)."
)
@click.option("--no-credential", is_flag=True, help="Load activities and learners only (no credential, no web user).")
def sandbox_seed(username, password, web_password, no_credential) -> None:
    """Load the test provider, activities and board test learners; create one sandbox credential and one
    sandbox web user."""
    from ..adapters.migrate import upgrade
    from ..service.sandbox import seed_sandbox

    services = _services()
    upgrade(services.settings.database_url)
    result = seed_sandbox(
        services, username=username, password=password, create_credential=not no_credential, web_password=web_password
    )
    _print_seed(result)


def _print_seed(result) -> None:
    click.echo(
        f"sandbox seeded: provider {result.provider_id}, {result.activities} activities, "
        f"{result.learners} registry learners"
    )
    if result.username:
        click.echo("sandbox credential (shown once; only its hash is stored):")
        click.echo(f"  ProviderId: {result.provider_id}")
        click.echo(f"  User:       {result.username}")
        click.echo(f"  Password:   {result.password}")
    if result.web_email:
        click.echo("sandbox web log-in for the pages (shown once; only its hash is stored):")
        click.echo(f"  E-mail:     {result.web_email}")
        click.echo(f"  Password:   {result.web_password}")


# -- credentials ------------------------------------------------------------------------------


@main.group()
def credentials() -> None:
    """Provider web-service credentials."""


@credentials.command("create")
@click.option("--provider-id", required=True, help="7-digit ACCME provider ID.")
@click.option("--environment", type=click.Choice(["sandbox", "production"]), required=True)
@click.option("--username", required=True)
@click.option("--password", help="Default: generated and printed once.")
@click.option("--provider-name", help="Creates the provider when it does not exist yet.")
@click.option("--provider-domain", help="Domain used in CreditIDs the service assigns (ccid:<domain>:...).")
@click.option("--provider-email", help="Where batch and rejection e-mails go.")
def credentials_create(provider_id, environment, username, password, provider_name, provider_domain, provider_email):
    """Create a credential for a provider in one environment."""
    from ..adapters.migrate import upgrade
    from ..service import accounts

    if not (len(provider_id) == 7 and provider_id.isdigit()):
        raise click.BadParameter("must be 7 digits (leading zeros kept)", param_hint="--provider-id")
    services = _services()
    upgrade(services.settings.database_url)
    secret = _operator(
        lambda: accounts.create_credential(
            services,
            provider_id=provider_id,
            environment=environment,
            username=username,
            password=password,
            provider_name=provider_name,
            provider_domain=provider_domain,
            provider_email=provider_email,
        )
    )
    click.echo(f"{environment} credential for provider {provider_id}:")
    click.echo(f"  User:     {username}")
    if not password:
        click.echo(f"  Password: {secret}   (shown once; only its hash is stored)")


def _operator(fn):
    """Call fn; what the service refuses becomes a usage error."""
    from ..service.accounts import AccountRefused

    try:
        return fn()
    except AccountRefused as exc:
        raise click.UsageError(str(exc)) from None


@credentials.command("rotate")
@click.argument("username")
@click.option("--password", help="Default: generated and printed once.")
def credentials_rotate(username, password):
    """Give a credential a new secret; the old one stops working at once."""
    from ..service import accounts

    secret = _operator(lambda: accounts.rotate_credential(_services(), username, password))
    click.echo(f"rotated {username}" + ("" if password else f"; new password: {secret}   (shown once)"))


@credentials.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable it again instead.")
def credentials_disable(username, enable):
    """Disable (or re-enable) a credential."""
    from ..service import accounts

    _operator(lambda: accounts.set_disabled(_services(), username, disabled=not enable))
    click.echo(f"{'enabled' if enable else 'disabled'} {username}")


@credentials.command("unlock")
@click.argument("username")
def credentials_unlock(username):
    """Lift the lock that repeated failed logins put on a credential."""
    from ..service.auth import unlock

    if not unlock(_services().store, username):
        raise click.UsageError(f"no credential {username!r}")
    click.echo(f"unlocked {username}")


@credentials.command("list")
def credentials_list():
    """List credentials (never their secrets)."""
    from ..service import accounts

    for row in accounts.credentials(_services()):
        state = "disabled" if row.disabled else "active"
        click.echo(f"{row.provider_id}\t{row.environment}\t{row.username}\t{state}")


# -- web users --------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """People's web users: the log-in for the pages (separate from web-service credentials)."""


@users.command("add")
@click.option("--provider-id", required=True, help="7-digit ACCME provider ID (the provider must exist).")
@click.option("--environment", type=click.Choice(["sandbox", "production"]), required=True)
@click.option("--name", required=True, help="The person's name, shown in the pages' header.")
@click.option("--email", required=True, help="The person's e-mail address: their log-in.")
@click.option("--password", help="Default: generated and printed once.")
def users_add(provider_id, environment, name, email, password):
    """Add a web user for a provider in one environment."""
    from ..adapters.migrate import upgrade
    from ..service import accounts

    services = _services()
    upgrade(services.settings.database_url)
    secret = _operator(
        lambda: accounts.create_web_user(
            services, provider_id=provider_id, environment=environment, name=name, email=email, password=password
        )
    )
    click.echo(f"{environment} web user for provider {provider_id}:")
    click.echo(f"  E-mail:   {email.strip().lower()}")
    if not password:
        click.echo(f"  Password: {secret}   (shown once; only its hash is stored)")


@users.command("reset-password")
@click.argument("email")
@click.option("--password", help="Default: generated and printed once.")
def users_reset_password(email, password):
    """Give a web user a new password (lifting a lock of failed log-ins); their sessions end at once."""
    from ..service import accounts

    secret = _operator(lambda: accounts.reset_web_user_password(_services(), email, password))
    click.echo(f"reset {email}" + ("" if password else f"; new password: {secret}   (shown once)"))


@users.command("disable")
@click.argument("email")
@click.option("--enable", is_flag=True, help="Enable it again instead.")
def users_disable(email, enable):
    """Disable (or re-enable) a web user."""
    from ..service import accounts

    _operator(lambda: accounts.set_web_user_disabled(_services(), email, disabled=not enable))
    click.echo(f"{'enabled' if enable else 'disabled'} {email}")


@users.command("list")
@click.option("--provider-id", required=True)
@click.option("--environment", type=click.Choice(["sandbox", "production"]), required=True)
def users_list(provider_id, environment):
    """List a provider's web users in one environment (never their passwords)."""
    from ..service import accounts

    for row in accounts.web_users(_services(), provider_id, environment):
        click.echo(f"{row.email}\t{row.name}\t{'disabled' if row.disabled else 'active'}")


# -- data imports -----------------------------------------------------------------------------


@main.group()
def activities() -> None:
    """Activities and their board registrations."""


def operator_account(services, provider_id: str | None, environment: str):
    """The Account an operator's command acts as: a provider (default: the sandbox test provider) in
    an environment, without a credential."""
    from ..adapters.data_files import sandbox_fixture
    from ..service.accounts import provider_account

    return _operator(
        lambda: provider_account(services, provider_id or sandbox_fixture()["provider"]["provider_id"], environment)
    )


@activities.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--provider-id", required=True)
@click.option("--environment", type=click.Choice(["sandbox", "production"]), required=True)
def activities_import(file, provider_id, environment):
    """Import activities from a JSON file (a list shaped like the sandbox fixture's activities)."""
    from ..adapters.data_files import activity_from_dict, load_json
    from ..domain.activities import ActivityRefused

    services = _services()
    data = load_json(file)
    items = data["activities"] if isinstance(data, dict) else data
    account = operator_account(services, provider_id, environment)

    year = services.clock.today().year
    try:
        activities = [activity_from_dict(item, year) for item in items]
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise click.UsageError(f"{file}: not an activities file: {exc!r}") from None
    for activity in activities:
        try:
            saved = services.activities.save(account, activity)
        except ActivityRefused as exc:
            raise click.UsageError(f"activity {activity.activity_id or activity.title!r} refused: {exc}") from None
        click.echo(f"{saved.activity_id}\t{saved.title}\t{', '.join(r.board for r in saved.registrations)}")


@main.group()
def registry() -> None:
    """Board registries (diplomates and licensees PARS matches learners against)."""


@registry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--environment", type=click.Choice(["sandbox", "production"]), default="sandbox", show_default=True)
def registry_import(file, environment):
    """Import registry learners from a JSON file (a list shaped like the sandbox fixture's registry)."""
    from ..adapters.data_files import learner_from_dict, load_json
    from ..service.sandbox import import_registry

    services = _services()
    data = load_json(file)
    items = data["registry"] if isinstance(data, dict) else data
    unknown = sorted({d["board"] for d in items} - set(services.catalogue.boards))
    if unknown:
        raise click.UsageError(f"unknown boards: {', '.join(unknown)}")
    year = services.clock.today().year
    count = import_registry(services, environment, [learner_from_dict(d, year) for d in items])
    click.echo(f"imported {count} registry learners into {environment}")


# -- serving ----------------------------------------------------------------------------------


@main.command()
@click.option("--poll", type=float, default=POLL_SECONDS, show_default=True, help="Seconds between polls when idle.")
def worker(poll):
    """Process batches, run board reviews and send mail until stopped (SIGTERM/SIGINT)."""
    from .worker import run_forever

    settings = Settings.from_env()
    logs.configure(settings.log_level)
    run_forever(_services(), poll_seconds=poll)


@main.command()
@click.option("--bind", default=lambda: os.environ.get("PARS_BIND", "127.0.0.1:8000"), show_default="127.0.0.1:8000")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="gunicorn workers [default: PARS_WORKERS, else 2 on SQLite and 2 per CPU on PostgreSQL]",
)
@click.option("--no-seed", is_flag=True, help="Do not seed the sandbox on an empty database.")
@click.option("--no-worker", is_flag=True, help="Do not run a worker process beside the web processes.")
def serve(bind, workers, no_seed, no_worker):
    """Migrate, seed the sandbox on first start, and serve SOAP + pages under gunicorn."""
    from . import serve as serving

    settings = Settings.from_env()
    workers = settings.web_workers if workers is None else workers
    logs.configure(settings.log_level)
    if serving.prepare(seed=not no_seed) != 0:
        sys.exit(1)
    # Every process of this service signs page sessions with one key (a random one unless set), and
    # knows the address it answers on (links in mail).
    os.environ.setdefault("PARS_SECRET_KEY", secrets.token_urlsafe(32))
    os.environ["PARS_BIND"] = bind
    click.echo(
        f"serving on http://{bind}/services/ACCMELearnerService.svc (WSDL: ?wsdl) "
        f"with {_safe_url(settings.database_url)} ({workers} gunicorn workers)"
    )
    sys.exit(serving.run(bind, workers, with_worker=not no_worker))


# -- offline tools ----------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def validate(file, as_json):
    """Check an ActivityReports XML, SOAP body or Template B file offline, against the board catalogue and
    the sandbox fixture (PARS_TODAY applies): no database, nothing written."""
    from ..service.validate import validate_file

    report = validate_file(file)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(0 if report.ok else 1)


# Feature commands live in their own modules and register themselves on `main`.
from . import cli_batches, cli_review  # noqa: E402,F401

if __name__ == "__main__":
    # Run as `python -m`, this file is __main__: the feature modules registered their commands on
    # the package module's `main`, so run that one.
    from pars_ws.entrypoints.cli import main as registered

    registered()
