"""The monthly run as a deployment on a Prefect server, on a schedule.

``famlink serve`` calls ``serve_monthly``: it registers the deployment
``famlink-monthly-run/<plan>`` with the drop folder, warehouse and plan as its
parameters and a cron schedule, then stays up and runs what the server asks for
(the scheduled run each month, and back-runs someone starts by hand).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CRON = "0 6 2 * *"   # 06:00 on the 2nd of each month, once the month's extracts are in


def prefect_api_url() -> str | None:
    """The server this process talks to (PREFECT_API_URL or the active profile), if any."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def serve_monthly(extracts: Path, warehouse: Path, plan: str, cron: str = DEFAULT_CRON) -> None:
    """Register the plan's deployment with its schedule and run its flow runs until stopped.

    The schedule is not paused when this process stops (a restart by systemd
    must not silently stop the monthly runs).
    """
    from flows.monthly import monthly_run

    monthly_run.serve(
        name=plan,
        cron=cron,
        parameters={"extracts": str(Path(extracts).resolve()),
                    "warehouse": str(Path(warehouse).resolve()), "plan": plan},
        description=f"The monthly {plan} run: drop folder {Path(extracts).resolve()}, "
                    f"warehouse {Path(warehouse).resolve()}.",
        tags=["famlink", plan],
        pause_on_shutdown=False,
        print_starting_message=True,
    )
