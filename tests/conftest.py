"""Shared fixtures: real servers on 127.0.0.1, each test starting clean."""

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.winslow",
    "tests.fixtures.seeded",
    "tests.fixtures.server",
    "tests.fixtures.postgres",
    "tests.fixtures.containers",
    "tests.fixtures.nomad",
    "tests.fixtures.slapd",
]
