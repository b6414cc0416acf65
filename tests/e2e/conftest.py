"""End-to-end fixtures: the project wheel, built once per test run; the shared ``neurolake serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .cluster import build_wheel


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory):
    """The project's wheel, as ``pip install`` and ``spark-submit --py-files`` get it."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@dataclass
class ServiceSite:
    """A copy of the nightly's catalog, settings for ``neurolake serve`` on it, and API keys."""

    conf: Path
    folder: Path
    keys: dict[tuple[str, str], str]
    settings: Any
    nightly: Any
    signing_key: Any

    def headers(self, role: str, tenant: str = "default") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[(role, tenant)]}"}


SITE_TENANTS = {
    "default": {"tables": ["*"]},
    "finance": {"tables": ["gold.*"], "statement_concurrency": 1, "statement_queue": 1},
}
OIDC_ISSUER = "https://issuer.example.invalid"


def _oidc_signing_key(jwks_file: Path):
    """A fresh RSA key; its public half is written as the issuer's JWKS (kid ``e2e``)."""
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks_file.write_text(json.dumps({"keys": [{**public, "kid": "e2e", "use": "sig", "alg": "RS256"}]}))
    return key


@pytest.fixture(scope="session")
def service_site(nightly_warehouse, tmp_path_factory):
    """Settings and keys (every role, tenants ``default`` and ``finance``) for the shared server."""
    from neurolake_spark.catalog.store import CatalogStore
    from neurolake_spark.config import load_settings
    from neurolake_spark.service.keys import ROLES, KeyStore

    from .service import copy_sqlite, write_service_conf

    lh, results = nightly_warehouse
    folder = tmp_path_factory.mktemp("service")
    signing_key = _oidc_signing_key(folder / "jwks.json")
    catalog = copy_sqlite(Path(lh.settings.catalog_url[len("sqlite:///") :]), folder / "catalog.db")
    conf = write_service_conf(
        folder / "serve.yaml",
        lh.settings.warehouse,
        f"sqlite:///{catalog}",
        {
            "tenants": SITE_TENANTS,
            "state_dir": str(folder / "state"),
            "rate_limit_per_key": {"burst": 100000, "per_second": 100000},
            "rate_limit_per_address": {"burst": 100000, "per_second": 100000},
            "max_body_bytes": 65536,
            "cors_origins": ["http://console.example"],
            "graph_node_limit": 500,
            "oidc": {"issuer": OIDC_ISSUER, "audience": "neurolake", "jwks_file": str(folder / "jwks.json")},
        },
    )
    settings = load_settings(conf)
    store = CatalogStore.from_settings(settings)
    keys = KeyStore(store, settings.service.tenants)
    made = {
        (role, tenant): keys.create(f"{role}-{tenant}", role, tenant)[1]
        for role in ROLES
        for tenant in SITE_TENANTS
    }
    store.close()
    return ServiceSite(conf, folder, made, settings, (lh, results), signing_key)


@pytest.fixture(scope="session")
def served(service_site):
    """One real ``neurolake serve`` for the whole test session."""
    from .service import serve

    with serve(service_site.conf, service_site.folder) as app:
        yield app


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium driven by Playwright (its own browser download is not used)."""
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """The folder for the console's page screenshots (artefacts): ``$CONSOLE_SCREENSHOTS`` or a temp one."""
    import os

    given = os.environ.get("CONSOLE_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("console-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"console screenshots in {folder}")
    return folder
