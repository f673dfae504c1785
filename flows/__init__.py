from config.prefect_env import configure_prefect_env

configure_prefect_env()

from tasks.privacy import install_log_masking  # noqa: E402 - after Prefect's environment

install_log_masking()  # no phone number or email in any log line, ours or Prefect's
