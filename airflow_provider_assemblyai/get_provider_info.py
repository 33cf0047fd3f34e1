"""Provider metadata read by Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point).

The connection form is declared here once: ``conn-fields`` / ``ui-field-behaviour`` drive the form on
Airflow 3.2+, and :class:`~airflow_provider_assemblyai.hooks.assemblyai.AssemblyAIHook` builds its
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` (read by Airflow 2.11 and 3.0/3.1) from the
same dictionaries, so the two can never drift apart.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_assemblyai import __version__

REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.assemblyai.com",
    "eu": "https://api.eu.assemblyai.com",
}
DEFAULT_REGION = "us"
DEFAULT_TIMEOUT_SECONDS = 30
DEFAULT_MAX_RETRIES = 5

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "region": {
        "label": "Region",
        "schema": {"type": ["string", "null"], "enum": sorted(REGION_BASE_URLS), "default": DEFAULT_REGION},
        "description": "us (api.assemblyai.com) or eu (api.eu.assemblyai.com); "
        "a transcript exists only in the region where it was created.",
    },
    "base_url": {
        "label": "Base URL (optional)",
        "schema": {"type": ["string", "null"]},
        "description": "Overrides the region's URL (a proxy, or the local emulator). https only, "
        "except for loopback hosts.",
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["integer", "null"], "minimum": 1, "default": DEFAULT_TIMEOUT_SECONDS},
        "description": "Per-request timeout in seconds.",
    },
    "max_retries": {
        "label": "Max retries",
        "schema": {"type": ["integer", "null"], "minimum": 0, "default": DEFAULT_MAX_RETRIES},
        "description": "Retries on 429, 5xx and dropped connections, with exponential backoff.",
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["host", "schema", "port", "login"],
    "relabeling": {"password": "API Key"},
    "placeholders": {
        "password": "your AssemblyAI API key",
        "region": DEFAULT_REGION,
        "base_url": "https://api.assemblyai.com",
        "timeout": str(DEFAULT_TIMEOUT_SECONDS),
        "max_retries": str(DEFAULT_MAX_RETRIES),
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata for Airflow's ProvidersManager."""
    return {
        "package-name": "airflow-provider-assemblyai",
        "name": "AssemblyAI",
        "description": "Delete AssemblyAI transcripts from Airflow: hook, operators, deferrable sensor.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AssemblyAI",
                "external-doc-url": "https://www.assemblyai.com/docs/api-reference/transcripts",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "AssemblyAI",
                "python-modules": ["airflow_provider_assemblyai.hooks.assemblyai"],
            }
        ],
        "operators": [
            {
                "integration-name": "AssemblyAI",
                "python-modules": ["airflow_provider_assemblyai.operators.assemblyai"],
            }
        ],
        "sensors": [
            {
                "integration-name": "AssemblyAI",
                "python-modules": ["airflow_provider_assemblyai.sensors.assemblyai"],
            }
        ],
        "triggers": [
            {
                "integration-name": "AssemblyAI",
                "python-modules": ["airflow_provider_assemblyai.triggers.assemblyai"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_assemblyai.hooks.assemblyai.AssemblyAIHook",
                "hook-name": "AssemblyAI",
                "connection-type": "assemblyai",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
                    "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
                    "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
                },
            }
        ],
    }
