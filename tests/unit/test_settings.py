"""Settings: defaults, precedence, references, and a clear message for every bad value."""

from pathlib import Path

import pytest
from carefront_sdk.adapters import Port

from portal.settings import Settings, SettingsError

SECRET = "s" * 40


def load(document: dict, **env: str) -> Settings:
    return Settings.from_document(document, {"CAREFRONT_SECRET_KEY": SECRET, **env}, None)


def test_defaults_are_a_working_sqlite_portal(tmp_path):
    settings = load({}, CAREFRONT_DATA_DIR=str(tmp_path))
    assert settings.database_url == f"sqlite:///{tmp_path / 'carefront.sqlite3'}"
    assert settings.hospital.languages == ("en", "es")
    assert settings.session.idle.total_seconds() == 15 * 60
    assert settings.session.absolute.total_seconds() == 12 * 3600
    assert settings.ports == {}


def test_environment_wins_over_the_file():
    settings = load(
        {"server": {"database_url": "sqlite:///from/file.sqlite3", "public_url": "https://file.example.org"}},
        DATABASE_URL="postgresql://u:p@127.0.0.1:5432/cf",
        CAREFRONT_PUBLIC_URL="https://env.example.org/",
    )
    assert settings.database_url == "postgresql://u:p@127.0.0.1:5432/cf"
    assert settings.public_url == "https://env.example.org"
    assert not settings.is_sqlite


def test_secret_by_environment_reference():
    settings = Settings.from_document({"server": {"secret_key": {"$env": "MY_SECRET"}}}, {"MY_SECRET": SECRET}, None)
    assert settings.secret_key == SECRET


def test_a_reference_to_a_missing_variable_names_it():
    with pytest.raises(SettingsError, match="MY_SECRET"):
        Settings.from_document({"server": {"secret_key": {"$env": "MY_SECRET"}}}, {}, None)


@pytest.mark.parametrize(
    ("document", "env", "setting", "expected"),
    [
        ({}, {"CAREFRONT_SECRET_KEY": "short"}, "secret_key", "at least 32 characters"),
        ({}, {"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL", "sqlite:/// or postgresql://"),
        ({}, {"DATABASE_URL": "sqlite:///"}, "DATABASE_URL", "sqlite:///path"),
        ({"hospital": {"time_zone": "Mars/Olympus"}}, {}, "hospital.time_zone", "IANA time zone"),
        ({"hospital": {"languages": ["en", "fr"]}}, {}, "hospital.languages", "drawn from en, es"),
        ({"hospital": {"default_language": "es", "languages": ["en"]}}, {}, "hospital.default_language", "one of en"),
        ({"hospital": {"name": ""}}, {}, "hospital.name", "non-empty string"),
        ({"hospital": {"logo": "missing.png"}}, {}, "hospital.logo", "existing .svg, .png or .webp"),
        ({"ports": {"fax": "x"}}, {}, "ports.fax", "one of ehr, clearinghouse, gateway, notifier"),
        ({"ports": {"ehr": 3}}, {}, "ports.ehr", "name of a registered adapter"),
        ({"server": {"public_url": "ftp://x"}}, {}, "public_url", "http(s) URL"),
        ({"server": {"adapter_timeout_seconds": -1}}, {}, "adapter_timeout_seconds", "positive number"),
        ({"plugins": {"allow": "sandbox"}}, {}, "plugins.allow", "list of plugin names"),
        ({"hospital": "Riverside"}, {}, "[hospital]", "table of settings"),
        ({"hospital": {"alerts_email": "billing office"}}, {}, "hospital.alerts_email", "an email address"),
        ({"jobs": {"in_process": "yes"}}, {}, "jobs.in_process", "true or false"),
        ({"jobs": {"interval_seconds": 0}}, {}, "jobs.interval_seconds", "positive number"),
        ({"jobs": {"outbox_max_attempts": 0}}, {}, "jobs.outbox_max_attempts", "at least 1"),
        ({"jobs": {"workers": 2}}, {}, "jobs.workers", "one of in_process"),
    ],
)
def test_a_bad_setting_is_named_with_what_was_expected(document, env, setting, expected):
    with pytest.raises(SettingsError) as caught:
        Settings.from_document(document, {"CAREFRONT_SECRET_KEY": SECRET, **env}, None)
    assert setting in caught.value.setting
    assert expected in caught.value.expected


def test_ports_and_plugin_lists():
    settings = load(
        {"ports": {"ehr": "fhir"}, "plugins": {"block": ["x12"]}},
        CAREFRONT_PLUGINS="sandbox, fhir",
    )
    assert settings.ports == {Port.EHR: "fhir"}
    assert settings.plugins_allow == ("sandbox", "fhir")
    assert settings.plugins_block == ("x12",)


def test_carefront_toml_is_read_and_relative_paths_are_beside_it(tmp_path, monkeypatch):
    logo = tmp_path / "logo.svg"
    logo.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    config = tmp_path / "carefront.toml"
    config.write_text('[hospital]\nname = "Lakeside Clinic"\nlogo = "logo.svg"\n[server]\ndata_dir = "state"\n')
    monkeypatch.chdir(Path("/"))
    settings = Settings.load({"CAREFRONT_CONFIG": str(config), "CAREFRONT_SECRET_KEY": SECRET})
    assert settings.hospital.name == "Lakeside Clinic"
    assert settings.hospital.logo == logo
    assert settings.data_dir == tmp_path / "state"


def test_a_broken_toml_file_is_named(tmp_path):
    config = tmp_path / "carefront.toml"
    config.write_text("[hospital\nname=")
    with pytest.raises(SettingsError, match="valid TOML"):
        Settings.load({"CAREFRONT_CONFIG": str(config), "CAREFRONT_SECRET_KEY": SECRET})


def test_jobs_run_in_process_unless_workers_run_them():
    assert load({}).jobs.in_process
    by_file = load({"jobs": {"in_process": False, "interval_seconds": 2, "outbox_max_attempts": 5}})
    assert (by_file.jobs.in_process, by_file.jobs.interval_seconds, by_file.jobs.outbox_max_attempts) == (False, 2.0, 5)
    assert not load({}, CAREFRONT_JOBS_IN_PROCESS="false").jobs.in_process
    assert load({"jobs": {"in_process": False}}, CAREFRONT_JOBS_IN_PROCESS="1").jobs.in_process
