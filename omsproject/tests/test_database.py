import pytest
from django.db import connection


@pytest.mark.django_db
def test_runs_on_postgresql_with_a_pool():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        assert cursor.fetchone()[0] in {"UTC", "Etc/UTC"}
    assert "pool" in connection.settings_dict["OPTIONS"]
