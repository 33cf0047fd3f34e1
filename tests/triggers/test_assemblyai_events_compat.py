"""TranscriptEventTrigger on both lanes: a real event trigger on Airflow 3, a clear refusal on 2.11."""

from __future__ import annotations

import airflow
import pytest
from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException
from packaging.version import Version

from airflow_provider_assemblyai.triggers import assemblyai

AIRFLOW_3 = Version(airflow.__version__).major >= 3


@pytest.mark.skipif(not AIRFLOW_3, reason="Airflow 3 only")
def test_on_airflow_3_it_is_an_event_trigger() -> None:
    from airflow.triggers.base import BaseEventTrigger

    assert assemblyai.EVENT_TRIGGERS_SUPPORTED
    assert isinstance(assemblyai.TranscriptEventTrigger(), BaseEventTrigger)


@pytest.mark.skipif(AIRFLOW_3, reason="Airflow 2 only")
def test_on_airflow_2_the_module_imports_and_using_the_class_says_it_needs_airflow_3() -> None:
    assert not assemblyai.EVENT_TRIGGERS_SUPPORTED
    with pytest.raises(AirflowOptionalProviderFeatureException, match="needs Airflow 3") as caught:
        assemblyai.TranscriptEventTrigger(statuses=["completed"])
    assert "AssetWatcher" in str(caught.value)
