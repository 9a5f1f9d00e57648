"""Settings: defaults that work locally, and one readable line per problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digest.config import load_settings, read_environment, with_secret_key
from digest.errors import ConfigError
from digest.resources import resource_path


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_loads_with_an_empty_environment() -> None:
    settings = load_settings(resource_path("config", "digest.toml"), environ={})
    assert settings.database_url == "sqlite:///var/digest.sqlite3"
    assert settings.smtp.host is None
    assert settings.outbox_dir == Path("var/outbox")
    assert settings.schedule == "0 7 * * *"
    assert [s.name for s in settings.sources] == ["hf-daily-papers", "featured"]
    assert all(Path(s.location).is_file() for s in settings.sources)  # relative to the config
    assert settings.warnings()  # no SECRET_KEY, no SMTP_HOST: said, not fatal
    assert any("unsubscribe only by the link" in w for w in settings.warnings())


def test_the_unsubscribe_mailto_is_one_key_that_digest_reads(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('[sender]\nunsubscribe_mailto = "u@example.org"\n')
    with pytest.raises(ConfigError, match="now \\[inbound\\] unsubscribe_address"):
        load_settings(config, environ={})
    config.write_text('[inbound]\nbounce_address = "bounces@example.org"\n')
    inbound = load_settings(config, environ={}).inbound
    assert inbound.unsubscribe_mailbox == "bounces@example.org"  # tagged per reader
    assert not any("unsubscribe only" in w for w in load_settings(config, environ={}).warnings())


def test_an_empty_config_file_gets_every_default(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, ""), environ={})
    assert settings.title == "Daily papers"
    assert settings.max_entries == 30
    assert settings.sources == ()


def test_environment_settings_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, ""),
        environ={
            "DIGEST_DATABASE_URL": "postgresql+psycopg://u:secret@db/digest",
            "DIGEST_BASE_URL": "https://digest.example.org/",
            "SMTP_HOST": "mail.example.org",
            "SMTP_SECURITY": "ssl",
            "SMTP_USERNAME": "bot",
            "SMTP_PASSWORD": "pw",
            "SECRET_KEY": "k" * 40,
        },
    )
    assert settings.base_url == "https://digest.example.org"
    assert settings.smtp.port == 465
    assert settings.smtp.username == "bot"
    assert settings.database_url_for_display == "postgresql+psycopg://u:***@db/digest"
    assert "pw" not in repr(settings) and "k" * 40 not in repr(settings)


def test_every_problem_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[digest]
timezone = "Mars/Olympus"
titel = "typo"
[sender]
address = "not-an-address"
[schedule]
cron = "every morning"
[email]
max_entries = 0
[colour]
x = 1
[[sources]]
name = "no location"
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={"SMTP_PORT": "99999", "SMTP_SECURITY": "tls"})
    problems = raised.value.problems
    zone = "expected an IANA timezone name such as Europe/Paris, got 'Mars/Olympus'"
    assert f"{path}: [digest] timezone: {zone}" in problems
    assert f"{path}: [digest] titel: unknown key (a typo?)" in problems
    assert any("[sender] address: expected an email address" in p for p in problems)
    assert any("[schedule] cron: expected a cron expression" in p for p in problems)
    assert any(
        "[email] max_entries: expected a whole number from 1 to 1,000,000, got 0" in p
        for p in problems
    )
    assert f"{path}: [colour]: unknown table (a typo?)" in problems
    assert any("[[sources]] #1: location" in p for p in problems)
    assert "SMTP_PORT: expected a port number (1-65535), got '99999'" in problems
    assert "SMTP_SECURITY: expected starttls, ssl or none, got 'tls'" in problems
    assert all("\n" not in p for p in problems)


def test_invalid_toml_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write_config(tmp_path, "[digest\n"), environ={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_dotenv_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SMTP_HOST=from-dotenv\nDIGEST_BASE_URL=https://dotenv.example\n")
    monkeypatch.setenv("SMTP_HOST", "from-environment")
    values = read_environment(dotenv)
    assert values["SMTP_HOST"] == "from-environment"
    assert values["DIGEST_BASE_URL"] == "https://dotenv.example"


def test_the_shipped_config_shows_every_setting_with_its_one_default() -> None:
    import re
    import tomllib

    from digest.config import TOML_SETTINGS

    text = resource_path("config", "digest.toml").read_text(encoding="utf-8")
    shipped = tomllib.loads(text)
    tables = {m.group(1): m.start() for m in re.finditer(r"^\[(\w+)\]$", text, re.M)}
    for declared in TOML_SETTINGS:
        where = f"[{declared.table}] {declared.key}"
        section = shipped.get(declared.table, {})
        if declared.key in section:
            assert section[declared.key] == declared.default, where
        else:  # shown commented out, in its table
            start = tables[declared.table]
            assert re.search(rf"^# {declared.key} = ", text[start:], re.M), where
    keys = {(d.table, d.key) for d in TOML_SETTINGS}
    assert len(keys) == len(TOML_SETTINGS)
    for table, section in shipped.items():
        if table != "sources":
            assert {(table, k) for k in section} <= keys, table


def test_env_example_shows_every_variable_with_its_one_default() -> None:
    from digest.config import ENV_SETTINGS

    example = Path(__file__).parents[1].joinpath(".env.example").read_text()
    shown = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert set(shown) == {var.name for var in ENV_SETTINGS} | {"DIGEST_CONFIG"}
    for var in ENV_SETTINGS:
        default = var.default
        expected = "" if var.derived or default in (None, ()) else str(default)
        if isinstance(default, float):
            expected = f"{default:g}"
        assert shown[var.name] == expected, var.name
    package = Path(__file__).parents[1].joinpath("digest", "config")
    source = "".join(p.read_text() for p in package.glob("*.py"))
    read_directly = set(re.findall(r'env(?:iron)?\.get\("([A-Z_]+)"', source))
    assert read_directly == {"DIGEST_CONFIG"}  # every other variable goes through ENV_SETTINGS


# -- the key that signs every link: never a built-in one


def test_a_local_installation_makes_its_own_key_once_readable_only_by_its_owner(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_config(tmp_path, ""), environ={})
    key_file = tmp_path / "var" / "secret_key"
    first = with_secret_key(settings, key_file)
    assert len(first.secret_key) >= 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert with_secret_key(settings, key_file).secret_key == first.secret_key
    other = with_secret_key(settings, tmp_path / "elsewhere" / "secret_key")
    assert other.secret_key != first.secret_key  # random, not built in


@pytest.mark.parametrize("base_url", ["https://digest.example.org", "http://10.0.0.5:8000"])
def test_a_public_site_without_a_key_refuses_with_a_hint(tmp_path: Path, base_url: str) -> None:
    settings = load_settings(write_config(tmp_path, ""), environ={"DIGEST_BASE_URL": base_url})
    with pytest.raises(ConfigError, match="SECRET_KEY is not set.*secrets.token_urlsafe"):
        with_secret_key(settings, tmp_path / "secret_key")
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("base_url", ["http://localhost:8000", "http://127.0.0.1", "http://[::1]/"])
def test_loopback_urls_count_as_local(tmp_path: Path, base_url: str) -> None:
    settings = load_settings(write_config(tmp_path, ""), environ={"DIGEST_BASE_URL": base_url})
    assert settings.is_local


def test_a_short_key_is_refused_by_every_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY: expected at least 32 characters, got 6"):
        load_settings(write_config(tmp_path, ""), environ={"SECRET_KEY": "hunter"})


@pytest.mark.parametrize(
    ("cron", "said"),
    [
        ("0 25 * * *", "its hour field '25'"),
        ("61 7 * * *", "its minute field '61'"),
        ("0 7 32 * *", "its day of month field '32'"),
        ("0 7 * 13 *", "its month field '13'"),
        ("0 7 * * funday", "its day of week field 'funday'"),
        ("0 7", "it has 2 fields"),
        ("61 0 7 * * *", "its second field '61'"),
    ],
)
def test_a_wrong_cron_says_which_field_is_wrong(tmp_path: Path, cron: str, said: str) -> None:
    path = write_config(tmp_path, f'[schedule]\ncron = "{cron}"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    (problem,) = raised.value.problems
    assert said in problem and problem.endswith(f"got {cron!r}")
