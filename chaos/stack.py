"""The chaos run's own local stack: two instances of every service, and the crashes.

Everything is started and stopped through the project's deploy/local scripts, on the run's own
state directory and ports; a crash is a SIGKILL (no clean shutdown), a restart is the script's
ordinary start, which waits until the part is ready again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fedelta_client.devenv import read_env_file
from shared.messaging.kafka import KafkaConnection

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "deploy" / "local"
SERVICES = ("ingest", "points", "tiers", "notifications", "engagement", "insights", "web")
# The web has no consumer: nothing of it to rebalance.
CONSUMERS = ("points", "tiers", "notifications", "engagement", "insights")
INFRASTRUCTURE = ("kafka", "postgres")
# Two instances of every service and one rebalancer per consumer, from Ports.service_base.
SERVICE_PORT_SPAN = 2 * len(SERVICES) + len(CONSUMERS)


@dataclass(frozen=True)
class Ports:
    """Service ports are `service_base + i` for the first instances (ingest, points, tiers,
    notifications, engagement, insights, web: i in SERVICES' order), `+7 + i` for the second
    ones and `+14 + j` for a third instance of consumer j (CONSUMERS' order), started only to
    force a rebalance: SERVICE_PORT_SPAN ports in all."""

    pg: int = 15462
    kafka: int = 19212
    kafka_controller: int = 19213
    smtp: int = 10036
    service_base: int = 18090

    def instances(self, service: str) -> tuple[int, int]:
        index = SERVICES.index(service)
        return self.service_base + index, self.service_base + len(SERVICES) + index

    def rebalance_port(self, service: str) -> int:
        return self.service_base + 2 * len(SERVICES) + CONSUMERS.index(service)


@dataclass(frozen=True)
class Target:
    """What a crash hits: `service:port`, `kafka` or `postgres`."""

    name: str

    @property
    def is_service(self) -> bool:
        return ":" in self.name


class ChaosStack:
    def __init__(self, state_dir: Path, ports: Ports) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.log_file = state_dir.parent / f"{state_dir.name}-runner.log"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    @property
    def kafka(self) -> KafkaConnection:
        """The broker as the admin principal of the stack's dev.env (PLAINTEXT without one)."""
        dev_env = self.state_dir / "dev.env"
        values = read_env_file(dev_env) if dev_env.exists() else {}
        return KafkaConnection.from_env(values | {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap})

    @property
    def mail_dir(self) -> Path:
        return self.state_dir / "mail"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "FEDELTA_STATE_DIR": str(self.state_dir),
            "FEDELTA_PG_PORT": str(self.ports.pg),
            "FEDELTA_KAFKA_PORT": str(self.ports.kafka),
            "FEDELTA_KAFKA_CONTROLLER_PORT": str(self.ports.kafka_controller),
            "FEDELTA_SMTP_PORT": str(self.ports.smtp),
            # The SMS provider stand-in listens next to the mail catcher.
            "FEDELTA_SMS_PORT": str(self.ports.smtp + 1),
            "FEDELTA_MAIL_DIR": str(self.mail_dir),
            # Every message goes out at once whatever the time of day: the run checks delivery,
            # not never-harass (which has its own tests).
            "FEDELTA_NOTIFICATIONS_QUIET_HOURS_START": "00:00",
            "FEDELTA_NOTIFICATIONS_QUIET_HOURS_END": "00:00",
            "FEDELTA_NOTIFICATIONS_DAILY_CAP": "100",
            "FEDELTA_NOTIFICATIONS_POINTS_DIGEST_WINDOW_MINUTES": "0",
            # Many small instances on a small machine.
            "FEDELTA_SERVICE_START_TIMEOUT": "180",
            "FEDELTA_KAFKA_START_TIMEOUT": "180",
        }
        for service in SERVICES:
            first, second = self.ports.instances(service)
            upper = service.upper()
            env[f"FEDELTA_{upper}_PORT"] = str(first)
            env[f"FEDELTA_{upper}_PORTS"] = f"{first},{second}"
            env[f"FEDELTA_{upper}_DATABASE_POOL_SIZE"] = "5"
            # One process per instance: a crash kills exactly one consumer-group member.
            env[f"FEDELTA_{upper}_WORKERS"] = "1"
        return env

    def targets(self) -> list[Target]:
        found = [
            Target(f"{service}:{port}")
            for service in SERVICES
            for port in self.ports.instances(service)
        ]
        return found + [Target(name) for name in INFRASTRUCTURE]

    # -- scripts ---------------------------------------------------------------------------

    def script(self, name: str, *args: str) -> None:
        """Runs a deploy/local script; its output goes to the runner's log file."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a") as log:
            log.write(f"$ {name} {' '.join(args)}\n")
            log.flush()
            result = subprocess.run(  # noqa: S603 (the project's own scripts, fixed args)
                [str(SCRIPTS / name), *args],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed (log: {self.log_file})")

    async def run_script(self, name: str, *args: str) -> None:
        await asyncio.to_thread(self.script, name, *args)

    def fresh(self) -> None:
        """Stops whatever an earlier run left on this state directory and deletes it."""
        self.down()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.log_file.unlink(missing_ok=True)

    def up(self) -> None:
        self.script("stack.sh", "up")
        # The local cluster trades durability for speed (synchronous_commit = off in
        # deploy/local/postgres.sh): a crash of PostgreSQL then loses the last few hundred
        # milliseconds of commits that were already acknowledged, which no service can make
        # up for. A real deployment keeps PostgreSQL's default, and so does the chaos stack:
        # ALTER SYSTEM lands in postgresql.auto.conf, read after the generated config and kept
        # across restarts; the reload applies it to the sessions already open.
        self.script("postgres.sh", "psql", "-c", "ALTER SYSTEM SET synchronous_commit = on")
        self.script("postgres.sh", "psql", "-c", "SELECT pg_reload_conf()")

    def down(self) -> None:
        extras = [f"{service}:{self.ports.rebalance_port(service)}" for service in CONSUMERS]
        for step in (("services.sh", "stop", *extras), ("stack.sh", "down")):
            # Nothing to stop on a state directory never started.
            with contextlib.suppress(RuntimeError):
                self.script(*step)

    def env_file(self, name: str) -> dict[str, str]:
        path = self.state_dir / name
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)

    # -- crashes -----------------------------------------------------------------------------

    async def kill(self, target: Target) -> None:
        if target.is_service:
            await self.run_script("services.sh", "kill", target.name)
        elif target.name == "kafka":
            _kill_group(self._pid("kafka.pid"))
        else:
            _kill_postgres(self._postmaster_pid())

    async def restart(self, target: Target) -> None:
        if target.is_service:
            await self.run_script("services.sh", "start", target.name)
            return
        if target.name == "postgres":
            await asyncio.to_thread(self._remove_stale_socket_locks)
        await self.run_script(f"{target.name}.sh", "start")

    def _remove_stale_socket_locks(self) -> None:
        """A killed postmaster's socket lock file names its pid; PostgreSQL refuses to start
        while that pid exists, and a killed process lingers as a zombie until whoever
        inherited it reaps it. A lock whose process is dead or a zombie is stale."""
        for lock in self.state_dir.glob(f"postgres/**/.s.PGSQL.{self.ports.pg}.lock"):
            try:
                pid = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if not _running(pid):
                lock.unlink(missing_ok=True)

    async def start_extra(self, service: str) -> Target:
        target = Target(f"{service}:{self.ports.rebalance_port(service)}")
        await self.run_script("services.sh", "start", target.name)
        return target

    def _pid(self, pidfile: str) -> int | None:
        try:
            return int((self.state_dir / "run" / pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _postmaster_pid(self) -> int | None:
        for path in self.state_dir.glob("postgres/**/postmaster.pid"):
            try:
                return int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return self._pid("postgres.pid")


def _kill_group(pid: int | None) -> None:
    """The process and its group (start_daemon made it a session leader)."""
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _kill_postgres(postmaster: int | None) -> None:
    """The postmaster and every backend it forked, at once: a machine losing power, not a
    shutdown (pg_ctl starts PostgreSQL in a process group of its own making)."""
    if postmaster is None:
        return
    victims = [postmaster, *_children(postmaster)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found
