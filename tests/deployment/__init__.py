"""`make test-deployment`: the provider in a production-shaped Airflow deployment (see __main__.py)."""
