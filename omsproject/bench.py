"""A bare endpoint for bench/api_place.py: one INSERT and nothing else (no DRF, no auth).

Routed only when OMS_BENCH_ENDPOINTS=true. It is the yardstick the order API is measured
against: the same server, the same middleware, the same database, one durable write.
The table is the bench script's own (``bench_inserts``, created by it).
"""

import json

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def bare_insert(request):
    payload = json.loads(request.body or b"{}")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_inserts (payload) VALUES (%s) RETURNING id", [json.dumps(payload)]
        )
        row_id = cursor.fetchone()[0]
    return JsonResponse({"id": row_id}, status=201)
