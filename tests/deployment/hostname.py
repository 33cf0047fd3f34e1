"""
``[core] hostname_callable`` of the deployment's workers and triggerers: each one a host of its own.

In production every Celery worker and triggerer runs on a host (or pod) of its own, so the ``hostname``
Airflow records (``job.hostname`` of a triggerer, ``task_instance.hostname`` of a task) tells which one
it is. Here they share one machine: ``DEPLOYMENT_HOSTNAME`` gives each process the name it reports.
"""

from __future__ import annotations

import os
import socket


def component_hostname() -> str:
    """``DEPLOYMENT_HOSTNAME`` if set, else the machine's fully qualified name (Airflow's default)."""
    return os.environ.get("DEPLOYMENT_HOSTNAME") or socket.getfqdn()
