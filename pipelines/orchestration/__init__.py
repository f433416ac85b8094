"""Running telbill's DAGs: Airflow environment, `airflow dags test` runs, the demo and audit reruns."""
