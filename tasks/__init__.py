from config.prefect_env import configure_prefect_env

configure_prefect_env()
