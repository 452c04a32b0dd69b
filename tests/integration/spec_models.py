"""The models (the `models:` entries of mqttspecd.yaml) the test suites run the service with.

Every Service has USERS_MODEL; suites add others with Service(extra_models=…) or
ServiceTestCase.EXTRA_MODELS.
"""

# The model of PROTOCOL.md §Configuration, exactly.
USERS_MODEL = {
    "name": "public.users",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "name", "type": "text", "nullable": False},
        {"name": "email", "type": "text", "unique": True},
        {"name": "status", "type": "text", "default": "active"},
        {"name": "created_at", "type": "timestamp", "default": "now"},
    ],
}

# A model with every field type; all but id and label are nullable.
THINGS_MODEL = {
    "name": "public.things",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "label", "type": "text", "nullable": False},
        {"name": "qty", "type": "integer"},
        {"name": "price", "type": "real"},
        {"name": "active", "type": "boolean"},
        {"name": "seen_at", "type": "timestamp"},
        {"name": "payload", "type": "json"},
        {"name": "note", "type": "text"},
    ],
}

# Many small rows (limit tests, ordering tests).
BULK_MODEL = {
    "name": "public.bulk",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "n", "type": "integer", "nullable": False},
        {"name": "tag", "type": "text"},
    ],
}
