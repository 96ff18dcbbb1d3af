"""The test run's own isolation (tests/conftest.py): no test sees the user's HOME, configuration
directories or ``RORCLIENT_*`` settings, and each test starts from empty directories."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest

from rorclient.config import Settings, default_config_path
from rorclient.store.registry import default_store_url
from tests.conftest import KEPT_VARIABLES


def test_home_and_the_user_directories_are_a_temporary_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = Path(os.environ["HOME"])
    assert Path.home() == home and home.is_relative_to(tmp_path_factory.getbasetemp())
    for directory in (
        platformdirs.user_config_dir("rorclient"),
        platformdirs.user_data_dir("rorclient"),
        platformdirs.user_cache_dir("rorclient"),
    ):
        assert Path(directory).is_relative_to(home)
    assert default_config_path().is_relative_to(home) and not default_config_path().exists()
    assert str(home) in default_store_url()


def test_no_rorclient_setting_leaks_in_from_the_environment() -> None:
    leaked = {name for name in os.environ if name.startswith("RORCLIENT_")} - KEPT_VARIABLES
    assert leaked == set()
    settings = Settings.load()
    assert settings.sources == () and settings.config_file is None


def test_each_test_starts_from_an_empty_home_1() -> None:
    _write_and_check_empty()


def test_each_test_starts_from_an_empty_home_2() -> None:
    _write_and_check_empty()


def _write_and_check_empty() -> None:
    config = Path(platformdirs.user_config_dir("rorclient"))
    assert not config.exists()  # what the other test wrote is not here
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[[sources]]\nname = "x"\n')
