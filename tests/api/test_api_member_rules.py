"""The member services' rules under concurrency: an organization always keeps an owner."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from apps.tenants.models import Membership, Role
from apps.tenants.services import LastOwnerError, leave_organization, remove_member
from tests.api.support import member_of


def run_together(*actions: Callable[[], None]) -> list[str]:
    """Run the actions in threads started at once; each result is "ok" or the error's name."""
    results: list[str] = []
    start = threading.Barrier(len(actions))

    def run(action: Callable[[], None]) -> None:
        start.wait()
        try:
            action()
            results.append("ok")
        except Exception as error:
            results.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


@pytest.mark.django_db(transaction=True)
def test_two_owners_leaving_at_once_leave_one_owner(labs, alice):
    erin = member_of(labs, "erin@example.com", Role.OWNER)

    results = run_together(
        lambda: leave_organization(labs, alice.user), lambda: leave_organization(labs, erin)
    )

    assert results == ["LastOwnerError", "ok"]
    assert Membership.objects.filter(organization=labs, role=Role.OWNER).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_owners_removing_each_other_at_once_leave_one_owner(labs, alice):
    erin = member_of(labs, "erin@example.com", Role.OWNER)
    alice_membership = Membership.objects.get(user=alice.user)
    erin_membership = Membership.objects.get(user=erin)

    results = run_together(
        lambda: remove_member(labs, erin_membership, acting_user=alice.user),
        lambda: remove_member(labs, alice_membership, acting_user=erin),
    )

    # Whoever goes second is no longer a member, so may not remove anyone.
    assert results == ["PermissionDenied", "ok"]
    assert Membership.objects.filter(organization=labs, role=Role.OWNER).count() == 1


@pytest.mark.django_db
def test_the_last_owner_is_kept_by_the_service_itself(labs, alice):
    with pytest.raises(LastOwnerError):
        leave_organization(labs, alice.user)
