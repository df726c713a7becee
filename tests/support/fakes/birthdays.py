"""In-memory stand-in for the birthday repository (`adapters/repositories/birthdays.py`), over
the members of a `FakeEngagement`, typed against the port."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.engagement import ports
from services.engagement.domain.birthdays import Birthday, BirthdayReward, Celebrated
from tests.support.fakes.engagement import Member


@dataclass
class FakeBirthdays(ports.BirthdayRepository):
    members: dict[str, Member] = field(default_factory=dict)
    reward: BirthdayReward | None = None
    grants: dict[tuple[str, int], ports.BirthdayGrant] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def birthday_reward(self) -> BirthdayReward | None:
        self.calls.append("birthday_reward")
        return self.reward

    async def set_birthday_reward(self, reward: BirthdayReward, at: datetime) -> None:
        self.calls.append("set_birthday_reward")
        self.reward = reward

    async def stop_birthday_reward(self) -> bool:
        self.calls.append("stop_birthday_reward")
        had, self.reward = self.reward is not None, None
        return had

    async def zones_celebrating(self, birthdays: Collection[Birthday]) -> set[str]:
        self.calls.append("zones_celebrating")
        return {
            m.time_zone
            for m in self.members.values()
            if m.birthday in birthdays and m.time_zone is not None
        }

    async def celebrants(
        self, celebrated: Sequence[Celebrated], after: str, limit: int
    ) -> list[ports.Celebrant]:
        self.calls.append("celebrants")
        years = {(c.zone, c.birthday): c.year for c in celebrated}
        found = [
            ports.Celebrant(customer_id, year, m.tier)
            for customer_id, m in sorted(self.members.items())
            if customer_id > after
            and m.birthday is not None
            and (year := years.get((m.time_zone or "", m.birthday))) is not None
            and (customer_id, year) not in self.grants
        ]
        return found[:limit]

    async def record_grants(self, grants: Sequence[ports.BirthdayGrant], at: datetime) -> set[str]:
        self.calls.append("record_grants")
        new = set()
        for grant in grants:
            if (grant.customer_id, grant.year) not in self.grants:
                self.grants[(grant.customer_id, grant.year)] = grant
                new.add(grant.grant_id)
        return new
