"""EmulatorConfig: one source for the knobs of the constructor, ``configure`` and the ``serve`` command."""

from __future__ import annotations

from dataclasses import fields

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, EmulatorConfig
from airflow_provider_assemblyai.testing.__main__ import build_parser
from tests.testing.helpers import KEY


def test_a_config_object_and_keywords_combine_keywords_winning() -> None:
    given = EmulatorConfig(
        queued_seconds=0, processing_seconds=0, link_base_url="https://api.assemblyai.com/"
    )
    emu = AssemblyAIEmulator(api_keys=(KEY,), config=given, processing_seconds=5)

    expected = EmulatorConfig(
        queued_seconds=0, processing_seconds=5, link_base_url="https://api.assemblyai.com"
    )
    assert emu.state.config == expected
    assert given.processing_seconds == 0  # the caller's object is left alone
    emu.configure(processing_seconds=9)
    emu.reset()
    assert emu.state.config == expected


def test_an_unknown_knob_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="queue_seconds"):
        AssemblyAIEmulator(api_keys=(KEY,), queue_seconds=0)


def test_every_knob_is_a_serve_option_defaulting_to_the_knob_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    serve_help = capsys.readouterr().out
    for knob in fields(EmulatorConfig):
        flag = "--random-seed" if knob.name == "seed" else "--" + knob.name.replace("_", "-")
        assert flag in serve_help, flag

    assert EmulatorConfig.from_arguments(build_parser().parse_args(["serve"])) == EmulatorConfig()
    argv = "serve --queued-seconds 0 --random-seed 7 --list-retention-days 0 --rate-limit 5/2"
    argv += " --allow-delete-in-progress --link-base-url https://api.assemblyai.com"
    args = build_parser().parse_args(argv.split())
    assert EmulatorConfig.from_arguments(args) == EmulatorConfig(
        queued_seconds=0,
        seed=7,
        list_retention_days=None,
        rate_limit=(5, 2.0),
        allow_delete_in_progress=True,
        link_base_url="https://api.assemblyai.com",
    )
