"""What every API of the OMS shares: who is calling (a strategy's key, or staff), what they
may do, request limits, the one error shape, paging, the JSON parser, money fields, common
filters and the OpenAPI pieces. The apps' ``api`` packages (orders, positions) hold only their
own serializers, filters, views and URLs, and take the rest from here."""
