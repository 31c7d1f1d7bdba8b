"""Typed settings read from the environment (documented in docs/operations.md).

Every setting has a default that makes ``hygie demo`` work with no configuration: an embedded
SQLite database and a blob folder under ``HYGIE_DATA_DIR`` (default ``./data``), and a blob key
generated on first start and kept in that folder.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from hygie.domain.eprescription.rules import EPrescriptionConfig, config_from

__all__ = ["Settings", "load_settings"]


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about one Hygie process."""

    data_dir: Path
    database_url: str
    blob_dir: Path
    blob_key: bytes = field(repr=False)
    base_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 16 * 1024 * 1024
    default_count: int = 20
    max_count: int = 1000
    max_includes: int = 1000
    max_bundle_entries: int = 10_000
    everything_page: int = 1000
    majority_age: int = 18
    category_matrix: Path | None = None
    pg_pool_size: int = 10
    # notifications (domain/outbox.py): e-mail through SMTP when a host is set, else into mail_file;
    # SMS into sms_file (the demo's gateway); the outbox is delivered every outbox_interval s (0: never)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "Hygie <ne-pas-repondre@hygie.localhost>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    mail_file: Path | None = None  # default <data_dir>/mail.jsonl
    sms_file: Path | None = None  # default <data_dir>/sms.jsonl
    outbox_interval: float = 10.0
    questionnaire_weeks: int = 8  # a stay ended within this many weeks gets its questionnaire
    max_upload_bytes: int = 10 * 1024 * 1024  # a document a person adds from the portal
    ens_opt_out_days: int = 42  # after a health space opens, the person may refuse it for this long
    ens_archive_years: int = 10  # a closed space's record is archived (and may reopen) this long
    # the directory search (domain/directory_search.py, domain/geo.py): the commune list with
    # coordinates (None: the package's extract) and the "professionnel numérique" label's URL
    communes_csv: Path | None = None
    digital_label_url: str | None = None  # None: Hygie's own extension URL
    # the referenced video service of teleconsultations (its base URL: each appointment gets its
    # own room under it, domain/bsp/telehealth.py); None: no teleconsultation can be scheduled
    video_service_url: str | None = None
    # the INSi reference register (JSON, written by `hygie demo`); absent: an empty register
    insi_register: Path | None = None  # default <data_dir>/insi-register.json
    # e-prescription: the facts unverified nationally (number system, prescribing professions,
    # first-delivery window) and the pharmacists' failed openings per hour (HYGIE_EPRESCRIPTION_*)
    eprescription: EPrescriptionConfig = field(default_factory=EPrescriptionConfig)
    # the app store's probes may fetch loopback and private addresses: for tests only, never in
    # production (HYGIE_STORE_PROBE_ALLOW_PRIVATE=1); and how long a probe waits for an answer
    store_probe_allow_private: bool = False
    store_probe_timeout_s: float = 5.0

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/") + "/fhir"

    @property
    def insi_register_path(self) -> Path:
        """The INSi reference register's file (``HYGIE_INSI_REGISTER``, else in the data folder)."""
        return self.insi_register or self.data_dir / "insi-register.json"


def _blob_key(data_dir: Path) -> bytes:
    """The AES-256 key for blobs at rest: from HYGIE_BLOB_KEY (base64) or a key file."""
    raw = os.environ.get("HYGIE_BLOB_KEY")
    if raw:
        key = base64.b64decode(raw)
        if len(key) != 32:
            raise ValueError("HYGIE_BLOB_KEY must be 32 bytes, base64-encoded")
        return key
    key_file = data_dir / "blob.key"
    if key_file.exists():
        return base64.b64decode(key_file.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    key_file.write_text(base64.b64encode(key).decode() + "\n")
    key_file.chmod(0o600)
    return key


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment; keyword overrides win (used by the CLI and tests)."""
    data_dir = Path(
        str(overrides.pop("data_dir", None) or os.environ.get("HYGIE_DATA_DIR") or "data")
    ).resolve()
    database_url = str(
        overrides.pop("database_url", None)
        or os.environ.get("HYGIE_DATABASE_URL")
        or f"sqlite:///{data_dir / 'hygie.sqlite3'}"
    )
    blob_dir = Path(
        str(overrides.pop("blob_dir", None) or os.environ.get("HYGIE_BLOB_DIR") or data_dir / "blobs")
    )
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        blob_dir=blob_dir,
        blob_key=_blob_key(data_dir),
        base_url=os.environ.get("HYGIE_BASE_URL", "http://127.0.0.1:8000"),
        max_body_bytes=_int("HYGIE_MAX_BODY_BYTES", 16 * 1024 * 1024),
        default_count=_int("HYGIE_DEFAULT_COUNT", 20),
        max_count=_int("HYGIE_MAX_COUNT", 1000),
        max_includes=_int("HYGIE_MAX_INCLUDES", 1000),
        max_bundle_entries=_int("HYGIE_MAX_BUNDLE_ENTRIES", 10_000),
        everything_page=_int("HYGIE_EVERYTHING_PAGE", 1000),
        majority_age=_int("HYGIE_MAJORITY_AGE", 18),
        category_matrix=Path(os.environ["HYGIE_CATEGORY_MATRIX"])
        if os.environ.get("HYGIE_CATEGORY_MATRIX")
        else None,
        pg_pool_size=_int("HYGIE_PG_POOL_SIZE", 10),
        smtp_host=os.environ.get("HYGIE_SMTP_HOST") or None,
        smtp_port=_int("HYGIE_SMTP_PORT", 25),
        smtp_from=os.environ.get("HYGIE_SMTP_FROM") or "Hygie <ne-pas-repondre@hygie.localhost>",
        smtp_starttls=os.environ.get("HYGIE_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
        smtp_username=os.environ.get("HYGIE_SMTP_USERNAME") or None,
        smtp_password=os.environ.get("HYGIE_SMTP_PASSWORD") or None,
        mail_file=Path(os.environ["HYGIE_MAIL_FILE"]) if os.environ.get("HYGIE_MAIL_FILE") else None,
        sms_file=Path(os.environ["HYGIE_SMS_FILE"]) if os.environ.get("HYGIE_SMS_FILE") else None,
        outbox_interval=float(os.environ.get("HYGIE_OUTBOX_INTERVAL") or 10),
        questionnaire_weeks=_int("HYGIE_QUESTIONNAIRE_WEEKS", 8),
        max_upload_bytes=_int("HYGIE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
        ens_opt_out_days=_int("HYGIE_ENS_OPT_OUT_DAYS", 42),
        ens_archive_years=_int("HYGIE_ENS_ARCHIVE_YEARS", 10),
        communes_csv=Path(os.environ["HYGIE_COMMUNES_CSV"]) if os.environ.get("HYGIE_COMMUNES_CSV") else None,
        digital_label_url=os.environ.get("HYGIE_DIGITAL_LABEL_URL") or None,
        video_service_url=os.environ.get("HYGIE_VIDEO_SERVICE_URL") or None,
        insi_register=Path(os.environ["HYGIE_INSI_REGISTER"])
        if os.environ.get("HYGIE_INSI_REGISTER")
        else None,
        eprescription=config_from(os.environ),
        store_probe_allow_private=os.environ.get("HYGIE_STORE_PROBE_ALLOW_PRIVATE", "").lower()
        in ("1", "true", "yes"),
        store_probe_timeout_s=float(os.environ.get("HYGIE_STORE_PROBE_TIMEOUT") or 5),
    )
    if overrides:
        from dataclasses import replace  # noqa: PLC0415 - only needed for overrides

        settings = replace(settings, **overrides)  # type: ignore[arg-type]
    return settings
