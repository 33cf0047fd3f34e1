"""
Operators for AssemblyAI transcripts: DeleteTranscriptOperator and PurgeTranscriptsOperator.

DAG files import this module, and the scheduler parses DAG files all day: keep module-level imports
to Airflow's base classes. The hook, the trigger and the purge machinery are imported where used.
"""

from __future__ import annotations

# === DeleteTranscriptOperator (owned by the delete-operator work) ===============================

# === PurgeTranscriptsOperator (owned by the purge work) =========================================
